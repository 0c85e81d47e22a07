// The ViT with 2x2 patches: draw a digit on the 8x8 grid and read the class probabilities and where
// [CLS] looks in each encoder block. Model: models/vit/vit-2.onnx, pixel levels x (1, 64) in 0..16 ->
// probabilities (1, 10) and [CLS]'s attention on the 16 patches, averaged over the heads (blocks, 16).
import { drawDigit, element } from "../widgets.js";

const TEXT = {
  grid: {
    zh: "8×8 画板：按住鼠标（或手指）涂画；也可以聚焦后用方向键移动光标，空格键涂上或擦掉一格。",
    en: "The 8×8 drawing grid: press and drag with the mouse (or a finger) to paint; or focus it, move the cursor with the arrow keys and press Space to paint or clear a cell.",
  },
  clear: { zh: "清空", en: "Clear" },
  erase: { zh: "橡皮擦", en: "Eraser" },
  example: { zh: "测试集里的数字：", en: "A test digit: " },
  probabilities: { zh: "各类的概率", en: "Class probabilities" },
  attention: { zh: "[CLS] 在每一块里看向哪些图块（4 个头平均，越亮权重越大）", en: "Where [CLS] looks in each block (mean of the 4 heads; brighter is more weight)" },
  block: { zh: "第 {n} 块", en: "block {n}" },
};
const SIDE = 8;

export async function mount(root, tools) {
  const say = (key) => TEXT[key][tools.language];
  const card = await tools.card();
  const { images, labels, levels } = card.meta;
  const top = levels - 1;
  let pixels = new Array(SIDE * SIDE).fill(0); // levels 0..top
  let cursor = 27;
  let erasing = false;

  const grid = element("canvas", { width: 240, height: 240, tabindex: 0, class: "unimodel-widget__pad", role: "application", "aria-label": say("grid") });
  const clear = element("button", { type: "button" }, [say("clear")]);
  const eraser = element("button", { type: "button", "aria-pressed": "false" }, [say("erase")]);
  const examples = images.map((_, i) => element("button", { type: "button" }, [String(labels[i])]));
  const bars = element("div", { class: "unimodel-widget__bars", role: "group", "aria-label": say("probabilities") });
  const rows = [...Array(10).keys()].map((digit) => {
    const fill = element("span", { class: "unimodel-widget__bar-fill" });
    const value = element("span", { class: "unimodel-widget__bar-value" }, ["–"]);
    bars.append(element("div", { class: "unimodel-widget__bar" }, [element("span", { class: "unimodel-widget__bar-label" }, [String(digit)]), element("span", { class: "unimodel-widget__bar-track" }, [fill]), value]));
    return { fill, value };
  });
  const blocks = card.outputs.attention.shape[0];
  const maps = [...Array(blocks).keys()].map((n) => element("canvas", { width: 64, height: 64, class: "unimodel-widget__digit", role: "img", "aria-label": say("block").replace("{n}", n + 1) }));
  const figures = maps.map((canvas, n) => element("figure", { class: "unimodel-widget__map" }, [canvas, element("figcaption", {}, [say("block").replace("{n}", n + 1)])]));
  root.append(
    element("div", { class: "unimodel-widget__row" }, [
      element("div", {}, [grid, element("div", { class: "unimodel-widget__controls" }, [clear, eraser]), element("div", { class: "unimodel-widget__controls" }, [say("example"), ...examples])]),
      element("div", {}, [element("p", {}, [element("strong", {}, [say("probabilities")])]), bars]),
    ]),
    element("p", {}, [say("attention")]),
    element("div", { class: "unimodel-widget__row" }, figures),
  );

  function drawGrid() {
    drawDigit(
      grid,
      pixels.map((level) => level / top),
    );
    if (document.activeElement === grid) {
      const cell = grid.width / SIDE;
      const context = grid.getContext("2d");
      context.strokeStyle = "#e6a700";
      context.lineWidth = 3;
      context.strokeRect((cursor % SIDE) * cell + 1.5, Math.floor(cursor / SIDE) * cell + 1.5, cell - 3, cell - 3);
    }
  }

  function show({ probabilities, attention }) {
    const best = probabilities.indexOf(Math.max(...probabilities));
    rows.forEach(({ fill, value }, digit) => {
      fill.style.width = `${(100 * probabilities[digit]).toFixed(1)}%`;
      fill.classList.toggle("unimodel-widget__bar-fill--best", digit === best);
      value.textContent = `${(100 * probabilities[digit]).toFixed(1)}%`;
    });
    const patches = attention.length / blocks;
    maps.forEach((canvas, n) => {
      const weights = attention.slice(n * patches, (n + 1) * patches);
      const most = Math.max(...weights);
      drawDigit(
        canvas,
        weights.map((w) => w / most),
        Math.sqrt(patches),
      );
    });
  }

  function read() {
    drawGrid();
    const asked = pixels.slice();
    tools.once(async () => show(await tools.run({ x: asked })));
  }

  function paint(event) {
    const box = grid.getBoundingClientRect();
    const column = Math.floor(((event.clientX - box.left) / box.width) * SIDE);
    const row = Math.floor(((event.clientY - box.top) / box.height) * SIDE);
    if (column < 0 || column >= SIDE || row < 0 || row >= SIDE) return;
    const level = erasing ? 0 : top;
    if (pixels[row * SIDE + column] === level) return;
    pixels[row * SIDE + column] = level;
    read();
  }
  grid.addEventListener("pointerdown", (event) => {
    grid.setPointerCapture(event.pointerId);
    paint(event);
  });
  grid.addEventListener("pointermove", (event) => {
    if (event.buttons) paint(event);
  });
  const arrows = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -SIDE, ArrowDown: SIDE };
  grid.addEventListener("keydown", (event) => {
    if (event.key in arrows) {
      event.preventDefault();
      const next = cursor + arrows[event.key];
      const sameRow = Math.abs(arrows[event.key]) === SIDE || Math.floor(next / SIDE) === Math.floor(cursor / SIDE);
      if (next >= 0 && next < SIDE * SIDE && sameRow) cursor = next;
      drawGrid();
    } else if (event.key === " ") {
      event.preventDefault();
      pixels[cursor] = pixels[cursor] > 0 ? 0 : top;
      read();
    }
  });
  grid.addEventListener("focus", drawGrid);
  grid.addEventListener("blur", drawGrid);
  clear.addEventListener("click", () => {
    pixels = new Array(SIDE * SIDE).fill(0);
    read();
  });
  eraser.addEventListener("click", () => {
    erasing = !erasing;
    eraser.setAttribute("aria-pressed", String(erasing));
  });
  examples.forEach((button, i) =>
    button.addEventListener("click", () => {
      pixels = images[i].slice();
      read();
    }),
  );

  // before any use: the card's example (the first test digit) and PyTorch's reading of it, nothing run yet
  pixels = card.inputs.x.data.slice();
  drawGrid();
  show({ probabilities: card.outputs.probabilities.data, attention: card.outputs.attention.data });
}
