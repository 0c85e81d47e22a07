// CLIP zero-shot: draw a digit, edit the 10 prompts in either language, and see which prompt the image
// is closest to. Model: models/clip/clip.onnx, pixel levels x (1, 64) and the prompts' token ids (10, L)
// -> cosine similarities and their softmax at the learned scale, each (1, 10). The prompts are tokenized
// here as `captions.tokenize` does: English split at spaces, Chinese into characters, then [EOS] and [PAD]s.
import { element, paintGrid, probabilityBars, sayer } from "./shared.js";

const TEXT = {
  prompts: { zh: "提示词（可以改；两种语言都行）", en: "Prompts (edit them; either language works)" },
  use: { zh: "换成{lang}提示词", en: "Use the {lang} prompts" },
  zh: { zh: "中文", en: "Chinese" },
  en: { zh: "英文", en: "English" },
  probabilities: { zh: "图像与各提示词匹配的概率", en: "How well the image matches each prompt" },
  prompt: { zh: "提示词 {n}", en: "prompt {n}" },
  unknown: {
    zh: "“{words}”不在模型的词表里，它只认识训练描述里出现过的词：{known}",
    en: "“{words}” is not in the model's vocabulary; it knows only the words of its training captions: {known}",
  },
  long: { zh: "太长了：最多 {n} 个词", en: "too long: {n} words at most" },
};
const PAD = "[PAD]";
const EOS = "[EOS]";

/** The tokens of `text`: pieces between spaces, each kept whole if it is ASCII and split into characters if not (`captions.words`). */
export const words = (text) => text.split(/\s+/).filter(Boolean).flatMap((piece) => (/^[\x00-\x7f]*$/.test(piece) ? [piece] : Array.from(piece)));

/** Token ids of `text` ended by [EOS] and padded to `context` (`captions.tokenize`), or {unknown, long} when it cannot be. */
export function tokenize(text, vocabulary, context) {
  const tokens = words(text);
  const unknown = tokens.filter((token) => !vocabulary.includes(token) || token === PAD || token === EOS);
  if (unknown.length || tokens.length + 1 > context) return { unknown, long: tokens.length + 1 > context };
  const ids = [...tokens, EOS].map((token) => vocabulary.indexOf(token));
  return { ids: [...ids, ...new Array(context - ids.length).fill(vocabulary.indexOf(PAD))] };
}

export async function mount(root, tools) {
  const say = sayer(TEXT);
  const card = await tools.card();
  const { vocabulary, context, prompts, examples, levels } = card.meta;
  const known = vocabulary.filter((token) => token !== PAD && token !== EOS).join(" ");
  let image = card.inputs.x.data.slice();

  const fields = prompts[tools.language].map((prompt, n) => element("input", { type: "text", value: prompt, "aria-label": say("prompt", { n: n + 1 }), class: "unimodel-widget__prompt" }));
  const problem = element("p", { class: "unimodel-widget__problem", "aria-live": "polite" });
  const other = tools.language === "zh" ? "en" : "zh";
  const swap = element("button", { type: "button" }, [say("use", { lang: say(other) })]);
  let shown = tools.language;
  const bars = probabilityBars(
    fields.map((_, n) => String(n + 1)),
    say("probabilities"),
  );

  function read() {
    const ids = [];
    problem.textContent = "";
    for (const field of fields) {
      const tokens = tokenize(field.value, vocabulary, context);
      field.setAttribute("aria-invalid", String(!tokens.ids));
      if (!tokens.ids) {
        problem.textContent = tokens.long ? say("long", { n: context - 1 }) : say("unknown", { words: tokens.unknown.join(" "), known });
        return;
      }
      ids.push(...tokens.ids);
    }
    const asked = image.slice();
    tools.once(async () => bars.show((await tools.run({ x: asked, ids })).probabilities));
  }
  const grid = paintGrid({
    levels,
    examples,
    labels: examples.map((_, digit) => digit),
    changed: (pixels) => {
      image = pixels;
      read();
    },
  });
  for (const field of fields) field.addEventListener("input", read);
  swap.addEventListener("click", () => {
    shown = shown === "zh" ? "en" : "zh";
    prompts[shown].forEach((prompt, n) => {
      fields[n].value = prompt;
    });
    swap.textContent = say("use", { lang: say(shown === "zh" ? "en" : "zh") });
    read();
  });
  const list = element(
    "ol",
    { class: "unimodel-widget__prompts" },
    fields.map((field) => element("li", {}, [field])),
  );
  root.append(
    element("div", { class: "unimodel-widget__row" }, [
      grid.node,
      element("div", {}, [element("p", {}, [element("strong", {}, [say("prompts")])]), list, swap, problem]),
      element("div", {}, [element("p", {}, [element("strong", {}, [say("probabilities")])]), bars.node]),
    ]),
  );
  // before any use: the card's example, a test 7, and (against the English prompts) PyTorch's reading of it
  grid.set(image);
  if (tools.language === "en") bars.show(card.outputs.probabilities.data);
}
