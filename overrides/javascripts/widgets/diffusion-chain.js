// DDPM on the digits: start from a noise x_T you can redraw and watch the reverse chain denoise it
// step by step, with or without the fresh noise each step adds. Model: models/diffusion/digits.onnx,
// the noise predictor eps_theta(x_t, t), x (1, 64) and t (1,) -> eps (1, 64); the chain below is the
// chapter's `reverse_step` and `predict_x0`, and its card's meta holds the schedule.
import { asOutput, drawDigit, element, normals, sayer } from "./shared.js";

export { asOutput }; // what the tests map the chain's result through

const TEXT = {
  noisy: { zh: "当前的 x_t", en: "the current x_t" },
  guess: { zh: "网络对 x_0 的猜测 x̂_0", en: "the network's guess of x_0, x̂_0" },
  run: { zh: "去噪", en: "Denoise" },
  redraw: { zh: "换一个噪声 x_T", en: "New noise x_T" },
  noise: { zh: "每步加入新的噪声 σ_t z（去掉它就只走均值 μ_θ）", en: "Add fresh noise σ_t z at every step (without it, the chain follows the mean μ_θ only)" },
  step: { zh: "第 {t} 步（共 {T} 步）", en: "step t = {t} of {T}" },
  seed: { zh: "噪声种子 {s}", en: "noise seed {s}" },
};
const FRAMES = 100; // the chain is shown in about this many frames, whatever its number of steps

/**
 * The reverse chain from `xT`: x_{t-1} = μ_θ(x_t, t) + σ_t z for t = T .. 1 (no noise at t = 1, none at all when
 * `draw` is null). `run(x, t)` gives eps_theta; `each(t, x_t, x̂_0)` is told every step and may be awaited.
 * Returns x_0 in the network's scale.
 */
export async function chain(run, meta, xT, draw = null, each = null) {
  const { betas, alpha_bars: alphaBars, one_minus_alpha_bars: oneMinus } = meta;
  let x = xT.slice();
  for (let t = betas.length; t >= 1; t--) {
    const eps = await run(x, t);
    const [beta, root] = [betas[t - 1], Math.sqrt(oneMinus[t - 1])];
    if (each) await each(t, x, x.map((v, i) => (v - root * eps[i]) / Math.sqrt(alphaBars[t - 1]))); // x̂_0 = (x_t - √(1-ᾱ_t)·ε_θ) / √ᾱ_t
    const mean = x.map((v, i) => (v - (beta / root) * eps[i]) / Math.sqrt(1 - beta)); // μ_θ = (x_t - β_t / √(1-ᾱ_t)·ε_θ) / √α_t
    const z = draw && t > 1 ? draw(x.length) : null;
    x = z ? mean.map((m, i) => m + Math.sqrt(beta) * z[i]) : mean; // x_{t-1} = μ_θ + σ_t·z, σ_t² = β_t
  }
  return x;
}

export async function mount(root, tools) {
  const say = sayer(TEXT);
  const card = await tools.card();
  const steps = card.meta.betas.length;
  const side = Math.sqrt(card.inputs.x.shape[1]);
  let seed = 1;
  let xT = normals(seed)(side * side);
  let running = false;

  const noisy = element("canvas", { width: 128, height: 128, class: "unimodel-widget__digit", role: "img", "aria-label": say("noisy") });
  const guess = element("canvas", { width: 128, height: 128, class: "unimodel-widget__digit", role: "img", "aria-label": say("guess") });
  const start = element("button", { type: "button" }, [say("run")]);
  const redraw = element("button", { type: "button" }, [say("redraw")]);
  const noise = element("input", { type: "checkbox", checked: "" });
  const progress = element("output", { class: "unimodel-widget__readout", "aria-live": "off" });
  const seedShown = element("output", { class: "unimodel-widget__readout" });
  const panel = (canvas, caption) => element("figure", { class: "unimodel-widget__map" }, [canvas, element("figcaption", {}, [caption])]);
  root.append(
    element("div", { class: "unimodel-widget__row unimodel-widget__panels" }, [panel(noisy, say("noisy")), panel(guess, say("guess"))]),
    progress,
    element("div", { class: "unimodel-widget__controls" }, [start, redraw, element("label", {}, [noise, " ", say("noise")]), seedShown]),
  );

  const showStart = () => {
    drawDigit(noisy, asOutput(xT), side);
    drawDigit(guess, new Array(side * side).fill(0), side);
    progress.textContent = say("step", { t: steps, T: steps });
    seedShown.textContent = say("seed", { s: seed });
  };
  const eps = async (x, t) => (await tools.run({ x, t: [t] })).eps;

  start.addEventListener("click", () => {
    if (running) return;
    running = start.disabled = redraw.disabled = true;
    const draw = noise.checked ? normals(seed + 1_000_003) : null; // the steps' noise: its own stream, fixed by the seed
    const every = Math.max(1, Math.round(steps / FRAMES));
    tools
      .once(async () => {
        const x0 = await chain(eps, card.meta, xT, draw, async (t, x, x0) => {
          if (t % every !== 0 && t !== 1) return;
          drawDigit(noisy, asOutput(x), side);
          drawDigit(guess, asOutput(x0), side);
          progress.textContent = say("step", { t, T: steps });
          await new Promise(requestAnimationFrame);
        });
        drawDigit(noisy, asOutput(x0), side);
        progress.textContent = say("step", { t: 0, T: steps });
      })
      .finally(() => {
        running = start.disabled = redraw.disabled = false;
      });
  });
  redraw.addEventListener("click", () => {
    seed += 1;
    xT = normals(seed)(side * side);
    showStart();
  });
  showStart();
}
