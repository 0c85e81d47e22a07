// GAN + R1 on the 2-D mixtures: draw points from the generator, with or without rejection sampling,
// over the ratio network's logit. Models: models/gan/ring.onnx and models/gan/grid.onnx, z (n, noise) and
// the plane's points (m, 2) -> G(z) (n, 2), the logit l(G(z)) (n,) and l on the plane (m,). Rejection
// keeps a draw with probability min(1, exp(l - M)), M the median of l over the draws (the chapter's `accepted`).
import { element, normals, sayer, uniforms } from "./shared.js";

const TEXT = {
  plane: {
    zh: "平面上的颜色是比值网络的 logit 减去中位数 M（红高蓝低）；黑点是留下的样本，灰圈是被拒绝的样本，小十字是各个模式的中心。",
    en: "Colour: the ratio network's logit minus the median M (red high, blue low); black dots: the draws kept; grey rings: the draws rejected; small crosses: the modes' centres.",
  },
  mixture: { zh: "数据", en: "data" },
  ring: { zh: "ring（8 个模式）", en: "ring (8 modes)" },
  grid: { zh: "grid（25 个模式）", en: "grid (25 modes)" },
  rejection: { zh: "拒绝采样", en: "rejection sampling" },
  again: { zh: "再抽一批", en: "Draw again" },
  summary: {
    zh: "生成器抽了 {n} 个点，留下 {kept} 个（{share}）；高质量（离模式中心不到 {k} 个标准差）的比例：全部 {before}，留下的 {after}。",
    en: "The generator drew {n} points and {kept} were kept ({share}); high quality (within {k} standard deviations of a mode's centre): {before} of all, {after} of those kept.",
  },
};
const LIMIT = 4; // the colour scale of l - M runs from -LIMIT (blue) to +LIMIT (red)

const percent = (x) => `${(100 * x).toFixed(1)}%`;
const median = (values) => {
  const sorted = Float64Array.from(values).sort();
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

/** Blue (-LIMIT) through white (0) to red (+LIMIT). */
function colour(value) {
  const v = Math.max(-1, Math.min(1, value / LIMIT));
  const fade = Math.round(255 * (1 - Math.abs(v)));
  return v >= 0 ? `rgb(255, ${fade}, ${fade})` : `rgb(${fade}, ${fade}, 255)`;
}

export async function mount(root, tools) {
  const say = sayer(TEXT);
  const cards = Object.fromEntries(await Promise.all(tools.models.map(async (model) => [model, await tools.card(model)])));
  let model = tools.models[0];
  let seed = 1;

  const plane = element("canvas", { width: 320, height: 320, class: "unimodel-widget__pad", role: "img", "aria-label": say("plane") });
  const mixture = element(
    "select",
    {},
    tools.models.map((name) => element("option", { value: name }, [say(name.split("/")[1])])),
  );
  const rejection = element("input", { type: "checkbox", checked: "" });
  const again = element("button", { type: "button" }, [say("again")]);
  const summary = element("output", { class: "unimodel-widget__readout", "aria-live": "polite" });
  root.append(
    element("div", { class: "unimodel-widget__row" }, [plane]),
    element("div", { class: "unimodel-widget__controls" }, [element("label", {}, [say("mixture"), " ", mixture]), element("label", {}, [rejection, " ", say("rejection")]), again]),
    summary,
  );

  function draw({ points, logits, plane_logits: planeLogits }) {
    const { extent, side, means, std, high_quality_stds: k } = cards[model].meta;
    const context = plane.getContext("2d");
    const scale = plane.width / (2 * extent);
    const at = (x, y) => [(x + extent) * scale, (extent - y) * scale];
    const M = median(logits);
    const cell = plane.width / side;
    planeLogits.forEach((l, i) => {
      context.fillStyle = colour(l - M);
      context.fillRect((i % side) * cell, Math.floor(i / side) * cell, Math.ceil(cell), Math.ceil(cell));
    });
    context.strokeStyle = "#000000";
    for (const [x, y] of means) {
      const [u, v] = at(x, y);
      context.beginPath();
      context.moveTo(u - 4, v);
      context.lineTo(u + 4, v);
      context.moveTo(u, v - 4);
      context.lineTo(u, v + 4);
      context.stroke();
    }
    const chance = uniforms(seed + 7_919); // the acceptance draws: their own stream, fixed by the seed
    const n = logits.length;
    let kept = 0;
    let good = 0;
    let goodKept = 0;
    for (let i = 0; i < n; i++) {
      const [x, y] = [points[2 * i], points[2 * i + 1]];
      const keep = !rejection.checked || chance() < Math.exp(logits[i] - M);
      const nearest = Math.min(...means.map(([a, b]) => Math.hypot(x - a, y - b))) / std;
      const high = nearest < k;
      kept += keep;
      good += high;
      goodKept += keep && high;
      const [u, v] = at(x, y);
      context.beginPath();
      if (keep) {
        context.fillStyle = "#000000";
        context.arc(u, v, 1.6, 0, 2 * Math.PI);
        context.fill();
      } else {
        context.strokeStyle = "#777777";
        context.arc(u, v, 2, 0, 2 * Math.PI);
        context.stroke();
      }
    }
    summary.textContent = say("summary", { n, kept, share: percent(kept / n), k, before: percent(good / n), after: percent(goodKept / Math.max(kept, 1)) });
  }

  function sample() {
    const asked = model;
    const card = cards[asked];
    const [draws, noise] = card.inputs.z.shape;
    const z = normals(seed)(draws * noise);
    tools.once(async () => draw(await tools.run({ z, plane: card.inputs.plane.data }, asked)));
  }
  const example = (card) => Object.fromEntries(Object.entries(card.outputs).map(([name, tensor]) => [name, tensor.data]));
  mixture.addEventListener("input", () => {
    model = mixture.value;
    draw(example(cards[model])); // PyTorch's draws for the card's example, until the runtime has answered
    sample();
  });
  rejection.addEventListener("input", sample);
  again.addEventListener("click", () => {
    seed += 1;
    sample();
  });
  // before any use: the card's example draws and PyTorch's outputs for them, nothing run yet
  draw(example(cards[model]));
}
