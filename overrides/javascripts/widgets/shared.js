// What the widgets share (see ../widgets.js, which loads this file with the first widget a page
// shows): ONNX Runtime Web, fetched when the reader first uses a widget, the models' cards and
// runner, and the pieces the widgets are built of (markup, seeded noise, a digit's picture, the
// drawing grid, probability bars).
//
// window.unimodelWidgets.check(NAME) runs a model on the example of its card (models/NAME.json)
// and measures how far ONNX Runtime Web is from PyTorch's outputs there: the browser tests call it.

const SITE = new URL("../../", import.meta.url); // this file is <site>/javascripts/widgets/shared.js
const RUNTIME = new URL("javascripts/onnxruntime/", SITE);
const TEXT = {
  loading: { zh: "正在加载 ONNX Runtime Web 和模型（只在第一次使用时下载）……", en: "Loading ONNX Runtime Web and the model (downloaded on first use only)…" },
  ready: { zh: "模型在你的浏览器里运行，不联网。", en: "The model runs in your browser, offline." },
  failed: {
    zh: "模型没能在这个浏览器里启动：",
    en: "The model could not start in this browser: ",
  },
  fallback: { zh: "上面的图是同一个模型在构建时画的。", en: "The figures above show the same model, drawn at build time." },
};

export const language = () => (document.documentElement.lang.startsWith("zh") ? "zh" : "en");

/** `say(key, values)`: the text of `key` in `table` ({key: {zh, en}}) in the page's language, each {name} replaced by values[name]. */
export const sayer =
  (table) =>
  (key, values = {}) =>
    Object.entries(values).reduce((text, [name, value]) => text.replace(`{${name}}`, value), table[key][language()]);
const say = sayer(TEXT);

let runtime = null;
function onnxruntime() {
  runtime ??= import(new URL("ort.wasm.min.mjs", RUNTIME).href).then((ort) => {
    ort.env.wasm.wasmPaths = RUNTIME.href; // the site's own copy, never a CDN
    ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which a static host does not give
    return ort;
  });
  return runtime;
}

const cards = new Map();
const sessions = new Map();

/** The card of model `name`: its inputs' and outputs' shapes, the example, PyTorch's outputs, `meta`. */
export function card(name) {
  if (!cards.has(name)) {
    cards.set(
      name,
      fetch(new URL(`models/${name}.json`, SITE)).then((response) => {
        if (!response.ok) throw new Error(`models/${name}.json: HTTP ${response.status}`);
        return response.json();
      }),
    );
  }
  return cards.get(name);
}

function session(name) {
  if (!sessions.has(name)) {
    sessions.set(
      name,
      onnxruntime().then((ort) => ort.InferenceSession.create(new URL(`models/${name}.onnx`, SITE).href, { executionProviders: ["wasm"] })),
    );
  }
  return sessions.get(name);
}

/** Run model `name` on `inputs` ({input name: Float32Array}, shaped as in its card): {output name: Float32Array}. */
export async function run(name, inputs) {
  const [ort, model, described] = await Promise.all([onnxruntime(), session(name), card(name)]);
  const feeds = {};
  for (const [input, values] of Object.entries(inputs)) {
    feeds[input] = new ort.Tensor("float32", Float32Array.from(values), described.inputs[input].shape);
  }
  const results = await model.run(feeds);
  return Object.fromEntries(Object.entries(results).map(([output, tensor]) => [output, tensor.data]));
}

/** Run model `name` on its card's example: the largest |ONNX Runtime Web - PyTorch| and whether every element is within the card's tolerance. */
export async function check(name) {
  const described = await card(name);
  const inputs = Object.fromEntries(Object.entries(described.inputs).map(([input, tensor]) => [input, tensor.data]));
  const outputs = await run(name, inputs);
  const { atol, rtol } = described.tolerance;
  let largest = 0;
  let within = true;
  for (const [output, expected] of Object.entries(described.outputs)) {
    expected.data.forEach((want, i) => {
      const difference = Math.abs(outputs[output][i] - want);
      largest = Math.max(largest, difference);
      within &&= difference <= atol + rtol * Math.abs(want);
    });
  }
  return { largest, within };
}

/**
 * What a widget is given: its models' names, their cards and runner (the first model's by default),
 * a status line, and `once(work)`, which runs `work` once the runtime has started and coalesces the
 * calls made while one runs (the latest wins), so that a dragged pointer never queues up stale runs;
 * the promise it returns settles when the work asked for, or work asked for after it, is done.
 */
function tools(widget) {
  const models = widget.dataset.model.split(" "); // a widget may offer several models (the GAN's two mixtures)
  const name = models[0];
  const status = document.createElement("p");
  status.className = "unimodel-widget__status";
  status.setAttribute("role", "status");
  let started = false;
  let next = null;
  let working = null;
  async function drain() {
    if (!started) status.textContent = say("loading");
    try {
      while (next) {
        const current = next;
        next = null;
        await current();
      }
      if (!started) status.textContent = say("ready");
      started = true;
    } catch (error) {
      status.textContent = `${say("failed")}${error.message || error}. ${say("fallback")}`;
      widget.classList.add("unimodel-widget--failed");
      next = null;
    }
  }
  function once(work) {
    next = work;
    working ??= drain().finally(() => {
      working = null;
    });
    return working;
  }
  return { models, language: language(), card: (model = name) => card(model), run: (inputs, model = name) => run(model, inputs), once, status };
}

/** A new `tag` element with `attributes` and `children`: how the widgets build their markup. */
export function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

/** A seeded uniform generator on [0, 1) (mulberry32): the same seed gives the same numbers in every browser. */
export function uniforms(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let r = Math.imul(state ^ (state >>> 15), 1 | state);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/** Pixel intensities in [0, 1] from the [-1, 1] scale the DDPM and flow-matching networks work in (the chapters' `as_output`). */
export const asOutput = (x) => x.map((v) => Math.min(1, Math.max(0, (v + 1) / 2)));

/** A seeded standard normal generator (Box-Muller on `uniforms`): `normals(seed)(n)` gives n draws. */
export function normals(seed) {
  const uniform = uniforms(seed);
  return (n) => Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()));
}

/** Draw `pixels` (values in [0, 1], row by row) on `canvas` as a side x side grey image, white ink on black as the figures draw it. */
export function drawDigit(canvas, pixels, side = 8) {
  const context = canvas.getContext("2d");
  const cell = canvas.width / side;
  for (let i = 0; i < side * side; i++) {
    const level = Math.round(255 * Math.min(1, Math.max(0, pixels[i])));
    context.fillStyle = `rgb(${level}, ${level}, ${level})`;
    context.fillRect((i % side) * cell, Math.floor(i / side) * cell, Math.ceil(cell), Math.ceil(cell));
  }
}

const GRID_TEXT = {
  grid: {
    zh: "8×8 画板：按住鼠标（或手指）涂画；也可以聚焦后用方向键移动光标，空格键涂上或擦掉一格。",
    en: "The 8×8 drawing grid: press and drag with the mouse (or a finger) to paint; or focus it, move the cursor with the arrow keys and press Space to paint or clear a cell.",
  },
  clear: { zh: "清空", en: "Clear" },
  erase: { zh: "橡皮擦", en: "Eraser" },
  example: { zh: "测试集里的数字：", en: "A test digit: " },
};

/**
 * An 8x8 grid the reader paints a digit on (mouse, touch, or arrow keys and Space), with Clear, an eraser and
 * buttons that load `examples` (pixel levels, labelled by `labels`). `changed(pixels)` hears every change;
 * `set(pixels)` shows a digit. Pixel levels run from 0 to `levels - 1`.
 */
export function paintGrid({ levels, examples = [], labels = [], changed, side = 8 }) {
  const say = sayer(GRID_TEXT);
  const top = levels - 1;
  let pixels = new Array(side * side).fill(0);
  let cursor = (side * side) / 2 - side / 2 - 1;
  let erasing = false;
  const canvas = element("canvas", { width: 240, height: 240, tabindex: 0, class: "unimodel-widget__pad", role: "application", "aria-label": say("grid") });
  const clear = element("button", { type: "button" }, [say("clear")]);
  const eraser = element("button", { type: "button", "aria-pressed": "false" }, [say("erase")]);
  const loads = examples.map((_, i) => element("button", { type: "button" }, [String(labels[i])]));
  const node = element("div", {}, [
    canvas,
    element("div", { class: "unimodel-widget__controls" }, [clear, eraser]),
    ...(examples.length ? [element("div", { class: "unimodel-widget__controls" }, [say("example"), ...loads])] : []),
  ]);

  function show() {
    drawDigit(
      canvas,
      pixels.map((level) => level / top),
      side,
    );
    if (document.activeElement === canvas) {
      const cell = canvas.width / side;
      const context = canvas.getContext("2d");
      context.strokeStyle = "#e6a700";
      context.lineWidth = 3;
      context.strokeRect((cursor % side) * cell + 1.5, Math.floor(cursor / side) * cell + 1.5, cell - 3, cell - 3);
    }
  }
  function set(next) {
    pixels = next.slice();
    show();
  }
  function change(next) {
    set(next);
    changed(pixels.slice());
  }
  function paint(event) {
    const box = canvas.getBoundingClientRect();
    const column = Math.floor(((event.clientX - box.left) / box.width) * side);
    const row = Math.floor(((event.clientY - box.top) / box.height) * side);
    const level = erasing ? 0 : top;
    if (column < 0 || column >= side || row < 0 || row >= side || pixels[row * side + column] === level) return;
    const next = pixels.slice();
    next[row * side + column] = level;
    change(next);
  }
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    paint(event);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (event.buttons) paint(event);
  });
  const arrows = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -side, ArrowDown: side };
  canvas.addEventListener("keydown", (event) => {
    if (event.key in arrows) {
      event.preventDefault();
      const next = cursor + arrows[event.key];
      const sameRow = Math.abs(arrows[event.key]) === side || Math.floor(next / side) === Math.floor(cursor / side);
      if (next >= 0 && next < side * side && sameRow) cursor = next;
      show();
    } else if (event.key === " ") {
      event.preventDefault();
      const next = pixels.slice();
      next[cursor] = next[cursor] > 0 ? 0 : top;
      change(next);
    }
  });
  canvas.addEventListener("focus", show);
  canvas.addEventListener("blur", show);
  clear.addEventListener("click", () => change(new Array(side * side).fill(0)));
  eraser.addEventListener("click", () => {
    erasing = !erasing;
    eraser.setAttribute("aria-pressed", String(erasing));
  });
  loads.forEach((button, i) => button.addEventListener("click", () => change(examples[i])));
  show();
  return { node, set };
}

/** Bars for the probabilities of `classes` (their labels): `show(probabilities)` fills them, the largest highlighted. */
export function probabilityBars(classes, label) {
  const node = element("div", { class: "unimodel-widget__bars", role: "group", "aria-label": label });
  const rows = classes.map((name) => {
    const fill = element("span", { class: "unimodel-widget__bar-fill" });
    const value = element("span", { class: "unimodel-widget__bar-value" }, ["–"]);
    node.append(element("div", { class: "unimodel-widget__bar" }, [element("span", { class: "unimodel-widget__bar-label" }, [name]), element("span", { class: "unimodel-widget__bar-track" }, [fill]), value]));
    return { fill, value };
  });
  function show(probabilities) {
    const best = probabilities.indexOf(Math.max(...probabilities));
    rows.forEach(({ fill, value }, i) => {
      fill.style.width = `${(100 * probabilities[i]).toFixed(1)}%`;
      fill.classList.toggle("unimodel-widget__bar-fill--best", i === best);
      value.textContent = `${(100 * probabilities[i]).toFixed(1)}%`;
    });
  }
  return { node, show };
}

/** Build `widget` with `mount(widget, tools)` (its kind's code), its status line last; a failure is said in the widget. */
export async function start(widget, mount) {
  const given = tools(widget);
  try {
    await mount(widget, given);
    widget.append(given.status);
  } catch (error) {
    widget.textContent = `${say("failed")}${error.message || error}. ${say("fallback")}`;
  }
}

window.unimodelWidgets = { card, run, check };
