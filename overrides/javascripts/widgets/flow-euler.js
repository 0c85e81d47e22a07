// Flow matching on the digits: take a noise you can redraw to a digit in as many Euler steps as you choose,
// from 1 (every noise lands near the average digit) to 100. Model: models/flow-matching/digits.onnx, the
// velocity v_theta(x_t, t), x (1, 64) and t (1,) in [0, 1] -> v (1, 64); the steps below are the chapter's
// `euler_sample`, and its card's meta holds a reference sample the page must reproduce.
import { asOutput, drawDigit, element, normals, sayer } from "./shared.js";

export { asOutput }; // what the tests map the chain's result through

const TEXT = {
  noise: { zh: "起点：噪声 x_1", en: "start: the noise x_1" },
  result: { zh: "走完之后的 x_0", en: "x_0 after the last step" },
  steps: { zh: "欧拉步数（网络前向次数）", en: "Euler steps (network passes)" },
  redraw: { zh: "换一个噪声", en: "New noise" },
  done: { zh: "走了 {n} 步，t 从 1 到 0", en: "{n} steps taken, t from 1 to 0" },
  reference: { zh: "PyTorch 走 {n} 步的结果（拖动滑块，在你的浏览器里重新走）", en: "PyTorch's result after {n} steps (move the slider to walk again in your browser)" },
  seed: { zh: "噪声种子 {s}", en: "noise seed {s}" },
};

/**
 * Euler's method from `noise` at t = 1 down to t = 0 in `steps` equal steps: x_{t-Δt} = x_t - Δt·v_θ(x_t, t).
 * `run(x, t)` gives v_theta. Returns x_0 in the network's scale.
 */
export async function euler(run, noise, steps) {
  let x = noise.slice();
  for (let k = 0; k < steps; k++) {
    const [t, next] = [1 - k / steps, 1 - (k + 1) / steps];
    const v = await run(x, t);
    x = x.map((value, i) => value + (next - t) * v[i]);
  }
  return x;
}

export async function mount(root, tools) {
  const say = sayer(TEXT);
  const card = await tools.card();
  const side = Math.sqrt(card.inputs.x.shape[1]);
  const reference = card.meta.reference; // before any use: the card's noise and what PyTorch made of it
  let seed = 0;
  let noise = reference.noise.slice();

  const start = element("canvas", { width: 128, height: 128, class: "unimodel-widget__digit", role: "img", "aria-label": say("noise") });
  const result = element("canvas", { width: 128, height: 128, class: "unimodel-widget__digit", role: "img", "aria-label": say("result") });
  const slider = element("input", { type: "range", min: "1", max: "100", value: String(reference.steps), "aria-label": say("steps") });
  const shown = element("output", { class: "unimodel-widget__readout", "aria-live": "polite" });
  const redraw = element("button", { type: "button" }, [say("redraw")]);
  const seedShown = element("output", { class: "unimodel-widget__readout" });
  const panel = (canvas, caption) => element("figure", { class: "unimodel-widget__map" }, [canvas, element("figcaption", {}, [caption])]);
  root.append(
    element("div", { class: "unimodel-widget__row unimodel-widget__panels" }, [panel(start, say("noise")), panel(result, say("result"))]),
    element("label", {}, [say("steps"), " ", slider]),
    shown,
    element("div", { class: "unimodel-widget__controls" }, [redraw, seedShown]),
  );

  const velocity = async (x, t) => (await tools.run({ x, t: [t] })).v;
  const take = () =>
    tools.once(async () => {
      const steps = Number(slider.value);
      drawDigit(result, asOutput(await euler(velocity, noise, steps)), side);
      shown.textContent = say("done", { n: steps });
    });
  const showStart = () => {
    drawDigit(start, asOutput(noise), side);
    drawDigit(result, new Array(side * side).fill(0), side);
    seedShown.textContent = say("seed", { s: seed });
  };
  const showReference = () => {
    drawDigit(start, asOutput(noise), side);
    drawDigit(result, reference.x_0, side);
    shown.textContent = say("reference", { n: reference.steps });
  };
  slider.addEventListener("input", take);
  redraw.addEventListener("click", () => {
    seed += 1;
    noise = normals(seed)(side * side);
    showStart();
    take();
  });
  showReference();
}
