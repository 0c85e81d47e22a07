// PixelCNN: watch a digit sampled pixel by pixel in raster order (one network pass per pixel), and see
// which pixels each pixel's distribution may look at. Model: models/pixelcnn/pixelcnn.onnx, pixel levels
// x (1, 64) -> p(x_i = k | x_<i) for every pixel i and level k, (1, L, 8, 8); its card's meta lists, for
// every pixel, the input pixels its output depends on through the whole network (the masks' doing).
import { drawDigit, element, sayer, uniforms } from "./shared.js";

const TEXT = {
  image: { zh: "逐像素采样（黄框：正在抽的像素）", en: "Sampled pixel by pixel (yellow: the pixel being drawn)" },
  field: { zh: "黄格能看见的像素", en: "What the yellow pixel may look at" },
  legend: {
    zh: "中间的格子：深灰是黄格依赖的像素，红色是排在它前面、却被盲区挡住的像素，白色是它后面的像素。聚焦后可用方向键换一个像素，也可以直接点选。",
    en: "Middle grid: dark grey, the pixels the yellow pixel depends on; red, earlier pixels hidden in its blind spot; white, later pixels. Focus it and use the arrow keys to pick another pixel, or click one.",
  },
  distribution: { zh: "p(x_i = k | x_<i)，k = 0 … 16", en: "p(x_i = k | x_<i), k = 0 … 16" },
  sample: { zh: "采样一张", en: "Sample a digit" },
  step: { zh: "只抽下一个像素", en: "Draw the next pixel" },
  progress: { zh: "已抽 {done} / {all} 个像素，网络运行了 {passes} 次；黄格看得见 {seen} 个前面的像素，盲区里有 {blind} 个。", en: "{done} of {all} pixels drawn, {passes} network passes; the yellow pixel sees {seen} earlier pixels, {blind} lie in its blind spot." },
};

export async function mount(root, tools) {
  const say = sayer(TEXT);
  const card = await tools.card();
  const { sees, levels } = card.meta;
  const [, , side] = card.outputs.probabilities.shape;
  const count = side * side;
  let x = new Array(count).fill(0); // pixel levels; those not drawn yet are 0, as in the chapter's `sample`
  let next = 0; // the next pixel to draw
  let passes = 0;
  let selected = 0; // the pixel whose view is shown
  let seed = 1;
  let draw = uniforms(seed);
  let running = false;

  const image = element("canvas", { width: 160, height: 160, class: "unimodel-widget__digit", role: "img", "aria-label": say("image") });
  const field = element("canvas", { width: 160, height: 160, tabindex: 0, class: "unimodel-widget__pad", role: "application", "aria-label": `${say("field")}. ${say("legend")}` });
  const chart = element("canvas", { width: 204, height: 80, class: "unimodel-widget__pad", role: "img", "aria-label": say("distribution") });
  const sample = element("button", { type: "button" }, [say("sample")]);
  const step = element("button", { type: "button" }, [say("step")]);
  const progress = element("output", { class: "unimodel-widget__readout", "aria-live": "off" });
  const panel = (canvas, caption) => element("figure", { class: "unimodel-widget__map" }, [canvas, element("figcaption", {}, [caption])]);
  root.append(
    element("div", { class: "unimodel-widget__row" }, [panel(image, say("image")), panel(field, say("field")), panel(chart, say("distribution"))]),
    element("p", { class: "unimodel-widget__problem" }, [say("legend")]),
    element("div", { class: "unimodel-widget__controls" }, [sample, step]),
    progress,
  );

  function show(distribution) {
    drawDigit(image, x.map((level, i) => (i < next ? level / (levels - 1) : 0)), side);
    const cell = image.width / side;
    const mark = (canvas, i) => {
      const context = canvas.getContext("2d");
      context.strokeStyle = "#e6a700";
      context.lineWidth = 3;
      context.strokeRect((i % side) * cell + 1.5, Math.floor(i / side) * cell + 1.5, cell - 3, cell - 3);
    };
    if (next < count) mark(image, next);
    const seen = new Set(sees[selected]);
    const context = field.getContext("2d");
    for (let i = 0; i < count; i++) {
      context.fillStyle = i === selected ? "#fff4cc" : seen.has(i) ? "#555555" : i < selected ? "#d62728" : "#ffffff";
      context.fillRect((i % side) * cell, Math.floor(i / side) * cell, cell, cell);
    }
    context.strokeStyle = "#bbbbbb";
    context.lineWidth = 1;
    for (let k = 0; k <= side; k++) {
      context.beginPath();
      context.moveTo(k * cell, 0);
      context.lineTo(k * cell, field.height);
      context.moveTo(0, k * cell);
      context.lineTo(field.width, k * cell);
      context.stroke();
    }
    mark(field, selected);
    if (distribution) {
      const bars = chart.getContext("2d");
      bars.fillStyle = "#ffffff";
      bars.fillRect(0, 0, chart.width, chart.height);
      const width = chart.width / levels;
      distribution.forEach((p, k) => {
        bars.fillStyle = "#3f51b5";
        bars.fillRect(k * width + 1, chart.height * (1 - p), width - 2, chart.height * p);
      });
    }
    const blind = [...Array(selected).keys()].filter((i) => !seen.has(i)).length;
    progress.textContent = say("progress", { done: next, all: count, passes, seen: selected - blind, blind });
  }

  /** Draw pixel `next` from p(x_next | x_<next): one network pass. */
  async function drawOne() {
    const { probabilities } = await tools.run({ x });
    passes += 1;
    const distribution = Array.from({ length: levels }, (_, k) => probabilities[k * count + next]);
    let u = draw();
    let level = 0;
    while (level < levels - 1 && u >= distribution[level]) u -= distribution[level++];
    x[next] = level;
    selected = next;
    next += 1;
    show(distribution);
  }

  function restart() {
    x = new Array(count).fill(0);
    next = passes = 0;
    seed += 1;
    draw = uniforms(seed);
  }
  sample.addEventListener("click", () => {
    if (running) return;
    running = sample.disabled = step.disabled = true;
    restart();
    tools
      .once(async () => {
        while (next < count) {
          await drawOne();
          await new Promise(requestAnimationFrame);
        }
      })
      .finally(() => {
        running = sample.disabled = step.disabled = false;
      });
  });
  step.addEventListener("click", () => {
    if (next >= count) restart();
    tools.once(drawOne);
  });
  const pick = (i) => {
    selected = Math.max(0, Math.min(count - 1, i));
    show(null);
  };
  field.addEventListener("pointerdown", (event) => {
    const box = field.getBoundingClientRect();
    pick(Math.floor(((event.clientY - box.top) / box.height) * side) * side + Math.floor(((event.clientX - box.left) / box.width) * side));
  });
  const arrows = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -side, ArrowDown: side };
  field.addEventListener("keydown", (event) => {
    if (!(event.key in arrows)) return;
    event.preventDefault();
    pick(selected + arrows[event.key]);
  });

  const blank = chart.getContext("2d");
  blank.fillStyle = "#ffffff";
  blank.fillRect(0, 0, chart.width, chart.height);
  // before any use: the blind spot of the pixel the chapter's figure looks at, the first of the last row
  selected = count - side;
  show(null);
}
