// The page's widgets: the chapters' trained models, run in the reader's browser by ONNX Runtime Web.
//
// A widget is <div class="unimodel-widget" data-widget="KIND" data-model="PAGE/NAME"></div> in a
// page (data-model may list several models, separated by spaces); its code is widgets/KIND.js, whose `mount(element, tools)` builds it. That code is imported
// when the widget first comes into view; ONNX Runtime Web (javascripts/onnxruntime/, served by
// the site) and the model (models/PAGE/NAME.onnx, exported and checked at build time) are fetched
// when the reader first uses it. A page's first load fetches this file only.
//
// window.unimodelWidgets.check(NAME) runs a model on the example of its card (models/NAME.json)
// and measures how far ONNX Runtime Web is from PyTorch's outputs there: the browser tests call it.

const SITE = new URL("../", import.meta.url); // this file is <site>/javascripts/widgets.js
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
export const say = (key) => TEXT[key][language()];

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
 * What a widget is given: its models' names, their cards and runner (the first model's by default), a status line, and `once(work)`, which
 * runs `work` after the runtime has started and coalesces calls made while one is running (the
 * latest wins), so that a dragged pointer never queues up stale runs.
 */
function tools(element) {
  const models = element.dataset.model.split(" "); // a widget may offer several models (the GAN's two mixtures): the first by default
  const name = models[0];
  const status = document.createElement("p");
  status.className = "unimodel-widget__status";
  status.setAttribute("role", "status");
  let started = false;
  let busy = false;
  let next = null;
  async function once(work) {
    next = work;
    if (busy) return;
    busy = true;
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
      element.classList.add("unimodel-widget--failed");
      next = null;
    } finally {
      busy = false;
    }
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

async function mount(element) {
  const kind = element.dataset.widget;
  try {
    const module = await import(new URL(`widgets/${kind}.js`, import.meta.url).href);
    const given = tools(element);
    await module.mount(element, given);
    element.append(given.status);
  } catch (error) {
    element.textContent = `${say("failed")}${error.message || error}. ${say("fallback")}`;
  }
}

const watcher = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) {
        watcher.unobserve(entry.target);
        mount(entry.target);
      }
    }
  },
  { rootMargin: "200px" },
);

// Material's instant navigation swaps the page's content: look for widgets after every swap
document$.subscribe(() => {
  for (const element of document.querySelectorAll(".unimodel-widget:not([data-watched])")) {
    element.dataset.watched = "";
    watcher.observe(element);
  }
});

window.unimodelWidgets = { card, run, check };
