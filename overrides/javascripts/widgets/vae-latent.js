// The VAE with a 2-D latent space: move a point over the plane of z and see the decoder's image;
// or slide from one test digit's posterior mean to another's. Model: models/vae/latent-2d.onnx,
// z (1, 2) -> the mean of p(x|z) (1, 64); its card's meta holds every test digit's posterior mean.
import { drawDigit, element, sayer } from "./shared.js";

const TEXT = {
  pad: {
    zh: "潜变量平面 z = (z₁, z₂)：点按或拖动来选 z，也可以先聚焦再用方向键移动（按住 Shift 走得更远）。彩色点是测试图像的后验均值。",
    en: "The latent plane z = (z₁, z₂): click or drag to pick z, or focus it and move with the arrow keys (Shift for longer steps). Coloured dots: the posterior means of the test digits.",
  },
  digit: { zh: "解码出的图像", en: "the decoded image" },
  from: { zh: "从数字", en: "from digit" },
  to: { zh: "到数字", en: "to digit" },
  along: { zh: "插值位置 t", en: "interpolation t" },
  legend: { zh: "在两张测试图像的后验均值之间插值", en: "Interpolate between two test digits' posterior means" },
};
// matplotlib's tab10, the colours the chapter's latent-space figure gives the digits
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const STEP = 0.1; // an arrow key moves z by this much (Shift: 5 times more)

export async function mount(root, tools) {
  const say = sayer(TEXT);
  const card = await tools.card();
  const { extent, means, labels, anchors } = card.meta;
  let z = card.inputs.z.data.slice(); // the card's example: PyTorch's image for it is drawn before anything runs

  const pad = element("canvas", { width: 280, height: 280, tabindex: 0, class: "unimodel-widget__pad", role: "application", "aria-label": say("pad") });
  const digit = element("canvas", { width: 160, height: 160, class: "unimodel-widget__digit", role: "img" });
  const readout = element("output", { class: "unimodel-widget__readout", "aria-live": "polite" });
  const digits = (selected) => element("select", {}, [...Array(10).keys()].map((d) => element("option", d === selected ? { value: d, selected: "" } : { value: d }, [String(d)])));
  const from = digits(3);
  const to = digits(8);
  const along = element("input", { type: "range", min: 0, max: 1, step: 0.05, value: 0 });
  const controls = element("fieldset", { class: "unimodel-widget__controls" }, [
    element("legend", {}, [say("legend")]),
    element("label", {}, [say("from"), " ", from]),
    element("label", {}, [say("to"), " ", to]),
    element("label", {}, [say("along"), " ", along]),
  ]);
  root.append(element("div", { class: "unimodel-widget__row" }, [pad, element("div", {}, [digit, readout])]), controls);

  const toPad = ([a, b]) => [((a + extent) / (2 * extent)) * pad.width, ((extent - b) / (2 * extent)) * pad.height];
  const fromPad = (x, y) => [(x / pad.width) * 2 * extent - extent, extent - (y / pad.height) * 2 * extent];
  const clamp = (v) => Math.min(extent, Math.max(-extent, v));

  function drawPad() {
    const context = pad.getContext("2d");
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, pad.width, pad.height);
    context.strokeStyle = "#d0d0d0";
    const [ox, oy] = toPad([0, 0]);
    context.beginPath();
    context.moveTo(ox, 0);
    context.lineTo(ox, pad.height);
    context.moveTo(0, oy);
    context.lineTo(pad.width, oy);
    context.stroke();
    means.forEach((mean, i) => {
      const [x, y] = toPad(mean);
      context.fillStyle = COLOURS[labels[i]];
      context.fillRect(x - 1.5, y - 1.5, 3, 3);
    });
    const [x, y] = toPad(z);
    context.lineWidth = 2.5;
    context.strokeStyle = "#000000";
    context.beginPath();
    context.arc(x, y, 7, 0, 2 * Math.PI);
    context.stroke();
    context.lineWidth = 1;
  }

  function show(pixels) {
    drawDigit(digit, pixels);
    const shown = `z = (${z[0].toFixed(2)}, ${z[1].toFixed(2)})`;
    readout.textContent = shown;
    digit.setAttribute("aria-label", `${say("digit")}, ${shown}`);
  }

  function moveTo(next) {
    z = [clamp(next[0]), clamp(next[1])];
    drawPad();
    const asked = z.slice();
    tools.once(async () => {
      const { image } = await tools.run({ z: asked });
      show(image);
    });
  }

  function pointer(event) {
    const box = pad.getBoundingClientRect();
    moveTo(fromPad(((event.clientX - box.left) / box.width) * pad.width, ((event.clientY - box.top) / box.height) * pad.height));
  }
  pad.addEventListener("pointerdown", (event) => {
    pad.setPointerCapture(event.pointerId);
    pointer(event);
  });
  pad.addEventListener("pointermove", (event) => {
    if (event.buttons) pointer(event);
  });
  const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
  pad.addEventListener("keydown", (event) => {
    if (!(event.key in arrows)) return;
    event.preventDefault();
    const step = STEP * (event.shiftKey ? 5 : 1);
    moveTo([z[0] + arrows[event.key][0] * step, z[1] + arrows[event.key][1] * step]);
  });
  const interpolate = () => {
    const t = Number(along.value);
    const [a, b] = [anchors[Number(from.value)], anchors[Number(to.value)]];
    moveTo([(1 - t) * a[0] + t * b[0], (1 - t) * a[1] + t * b[1]]);
  };
  for (const control of [from, to, along]) control.addEventListener("input", interpolate);

  drawPad();
  show(card.outputs.image.data);
}
