// The ViT with 2x2 patches: draw a digit on the 8x8 grid and read the class probabilities and where
// [CLS] looks in each encoder block. Model: models/vit/vit-2.onnx, pixel levels x (1, 64) in 0..16 ->
// probabilities (1, 10) and [CLS]'s attention on the 16 patches, averaged over the heads (blocks, 16).
import { drawDigit, element, paintGrid, probabilityBars, sayer } from "./shared.js";

const TEXT = {
  probabilities: { zh: "各类的概率", en: "Class probabilities" },
  attention: { zh: "[CLS] 在每一块里看向哪些图块（4 个头平均，越亮权重越大）", en: "Where [CLS] looks in each block (mean of the 4 heads; brighter is more weight)" },
  block: { zh: "第 {n} 块", en: "block {n}" },
};

export async function mount(root, tools) {
  const say = sayer(TEXT);
  const card = await tools.card();
  const { images, labels, levels } = card.meta;
  const bars = probabilityBars([...Array(10).keys()].map(String), say("probabilities"));
  const blocks = card.outputs.attention.shape[0];
  const name = (n) => say("block").replace("{n}", n + 1);
  const maps = [...Array(blocks).keys()].map((n) => element("canvas", { width: 64, height: 64, class: "unimodel-widget__digit", role: "img", "aria-label": name(n) }));

  function show({ probabilities, attention }) {
    bars.show(probabilities);
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
  const grid = paintGrid({ levels, examples: images, labels, changed: (pixels) => tools.once(async () => show(await tools.run({ x: pixels }))) });
  root.append(
    element("div", { class: "unimodel-widget__row" }, [grid.node, element("div", {}, [element("p", {}, [element("strong", {}, [say("probabilities")])]), bars.node])]),
    element("p", {}, [say("attention")]),
    element("div", { class: "unimodel-widget__row" }, maps.map((canvas, n) => element("figure", { class: "unimodel-widget__map" }, [canvas, element("figcaption", {}, [name(n)])]))),
  );
  // before any use: the card's example (the first test digit) and PyTorch's reading of it, nothing run yet
  grid.set(card.inputs.x.data);
  show({ probabilities: card.outputs.probabilities.data, attention: card.outputs.attention.data });
}
