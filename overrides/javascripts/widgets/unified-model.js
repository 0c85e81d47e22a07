// The hands-on unified model: type a digit's name (七 or "seven") and watch its 16 image codes drawn one
// at a time with classifier-free guidance, then decoded; or draw a digit and read the captions it writes
// in both languages. Models: models/unified-model/transformer.onnx, ids (2, L) -> next-token logits
// (2, L, V), and models/unified-model/tokenizer.onnx, codes (1, N) -> image (1, 64) and image -> codes.
// The sequences are the chapter's: [BOS] prompt [BOI] c1..cN to draw, [BOS] [BOI] c1..cN [EOI] [lang] to read.
import { drawDigit, element, paintGrid, sayer, uniforms } from "./shared.js";

const TEXT = {
  prompt: { zh: "提示词（一个数字的名字，中英文都行）", en: "Prompt (a digit's name, in either language)" },
  draw: { zh: "画出来", en: "Draw it" },
  guidance: { zh: "引导系数 s", en: "guidance scale s" },
  codes: { zh: "16 个图像码，按顺序一个一个抽出", en: "The 16 image codes, sampled one at a time" },
  image: { zh: "解码出的图像", en: "The decoded image" },
  unknown: { zh: "模型只认识这些名字：{names}", en: "The model knows these names only: {names}" },
  read: { zh: "画一个数字，让模型用两种语言写描述：", en: "Draw a digit and the model writes its caption in both languages:" },
  written: { zh: "中文：{zh}　英文：{en}", en: "Chinese: {zh}   English: {en}" },
  step: { zh: "第 {n} / {N} 个码", en: "code {n} of {N}" },
};
const STEP_MS = 60; // a pause between codes, so that the eye can follow them

export async function mount(root, tools) {
  const say = sayer(TEXT);
  const [transformer, tokenizer] = tools.models;
  const card = await tools.card(transformer);
  const { text_vocab: vocab, names, words, caption_words: captionWords, language_tokens: languageTokens, codes: N, guidance, levels, examples } = card.meta;
  const [rows, length, V] = card.inputs.ids.shape.concat(card.outputs.logits.shape[2]);
  const id = Object.fromEntries(vocab.map((token, i) => [token, i]));
  const offset = vocab.length; // image code k has id offset + k
  const side = Math.sqrt(N);
  const known = [...names.zh, ...names.en];
  let seed = 1;

  /** Next-token logits of sequences `sequences` (each padded to the fixed length), and the logits at `position` of each. */
  async function next(sequences, position) {
    const padded = Array.from({ length: rows }, (_, r) => {
      const ids = sequences[Math.min(r, sequences.length - 1)];
      return [...ids, ...new Array(length - ids.length).fill(id["[PAD]"])];
    });
    const { logits } = await tools.run({ ids: padded.flat() }, transformer);
    return sequences.map((_, r) => logits.slice((r * length + position) * V, (r * length + position + 1) * V));
  }

  // ---- drawing
  const prompt = element("input", { type: "text", value: names[tools.language][7], "aria-label": say("prompt"), class: "unimodel-widget__prompt" });
  const scale = element("input", { type: "range", min: 0, max: 8, step: 0.5, value: guidance });
  const scaleShown = element("output", {}, [String(guidance)]);
  const go = element("button", { type: "button" }, [say("draw")]);
  const grid = element("canvas", { width: 160, height: 160, class: "unimodel-widget__pad", role: "img", "aria-label": say("codes") });
  const image = element("canvas", { width: 160, height: 160, class: "unimodel-widget__digit", role: "img", "aria-label": say("image") });
  const progress = element("output", { class: "unimodel-widget__readout", "aria-live": "off" });
  const problem = element("p", { class: "unimodel-widget__problem", "aria-live": "polite" });

  function showCodes(codes) {
    const context = grid.getContext("2d");
    const cell = grid.width / side;
    context.font = `${Math.round(cell / 2.6)}px monospace`;
    context.textAlign = "center";
    context.textBaseline = "middle";
    for (let j = 0; j < N; j++) {
      const [x, y] = [(j % side) * cell, Math.floor(j / side) * cell];
      const drawn = j < codes.length;
      context.fillStyle = drawn ? `hsl(${(codes[j] * 137.5) % 360}, 55%, 80%)` : "#ffffff";
      context.fillRect(x, y, cell, cell);
      context.strokeStyle = "#999999";
      context.strokeRect(x + 0.5, y + 0.5, cell - 1, cell - 1);
      if (drawn) {
        context.fillStyle = "#000000";
        context.fillText(String(codes[j]), x + cell / 2, y + cell / 2);
      }
    }
  }

  /** The chapter's `generate_codes` for one prompt: each step, softmax(l_null + s (l_prompt - l_null)) over the codes. */
  async function generate(word, s, uniform, each) {
    const withPrompt = [id["[BOS]"], id[word], id["[BOI]"]];
    const withoutPrompt = [id["[BOS]"], id["[NULL]"], id["[BOI]"]];
    const codes = [];
    for (let i = 0; i < N; i++) {
      const [conditional, unconditional] = (await next([withPrompt, withoutPrompt], 2 + i)).map((logits) => logits.slice(offset));
      const guided = unconditional.map((u, k) => u + s * (conditional[k] - u)); // ℓ_g = ℓ_u + s·(ℓ_c - ℓ_u)
      const most = Math.max(...guided);
      const weights = guided.map((l) => Math.exp(l - most));
      let u = uniform() * weights.reduce((a, b) => a + b, 0);
      let k = 0;
      while (k < weights.length - 1 && u >= weights[k]) u -= weights[k++];
      codes.push(k);
      withPrompt.push(offset + k);
      withoutPrompt.push(offset + k);
      await each(codes);
    }
    return codes;
  }

  function drawPrompt() {
    const word = prompt.value.trim();
    prompt.setAttribute("aria-invalid", String(!known.includes(word)));
    if (!known.includes(word)) {
      problem.textContent = say("unknown", { names: known.join(" ") });
      return;
    }
    problem.textContent = "";
    seed += 1;
    const uniform = uniforms(seed);
    const s = Number(scale.value);
    go.disabled = true;
    tools
      .once(async () => {
        const codes = await generate(word, s, uniform, async (codes) => {
          showCodes(codes);
          progress.textContent = say("step", { n: codes.length, N });
          await new Promise((resolve) => setTimeout(resolve, STEP_MS));
        });
        const { image: pixels } = await tools.run({ codes, x: new Array(64).fill(0) }, tokenizer);
        drawDigit(image, pixels);
      })
      .finally(() => {
        go.disabled = false;
      });
  }
  go.addEventListener("click", drawPrompt);
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter") drawPrompt();
  });
  scale.addEventListener("input", () => {
    scaleShown.textContent = scale.value;
  });

  // ---- reading
  const captions = element("output", { class: "unimodel-widget__readout", "aria-live": "polite" });
  const writable = new Set([...words, "[EOS]"].map((token) => id[token]));

  /** The chapter's `write`: greedy captions of `codes`, one row per language, words and [EOS] only. */
  async function write(codes) {
    const languages = Object.keys(languageTokens);
    const sequences = languages.map((lang) => [id["[BOS]"], id["[BOI]"], ...codes.map((k) => offset + k), id["[EOI]"], id[languageTokens[lang]]]);
    const written = languages.map(() => []);
    for (let step = 0; step <= captionWords; step++) {
      const logits = await next(sequences, sequences[0].length - 1);
      logits.forEach((row, r) => {
        let best = -1;
        for (let t = 0; t < offset; t++) if (writable.has(t) && (best < 0 || row[t] > row[best])) best = t;
        sequences[r].push(best);
        written[r].push(vocab[best]);
      });
    }
    return Object.fromEntries(languages.map((lang, r) => [lang, written[r].slice(0, written[r].includes("[EOS]") ? written[r].indexOf("[EOS]") : undefined)]));
  }
  const join = (caption, lang) => caption.join(lang === "zh" ? "，" : ", ");
  async function read(pixels) {
    const { codes_of_x: codes } = await tools.run({ codes: new Array(N).fill(0), x: pixels }, tokenizer);
    const written = await write(Array.from(codes, Math.round));
    captions.textContent = say("written", { zh: join(written.zh, "zh"), en: join(written.en, "en") });
    return written;
  }
  const reader = paintGrid({
    levels,
    examples,
    labels: examples.map((_, digit) => digit),
    changed: (pixels) => tools.once(() => read(pixels)),
  });

  root.append(
    element("div", { class: "unimodel-widget__controls" }, [
      element("label", {}, [say("prompt"), " ", prompt]),
      element("label", {}, [say("guidance"), " ", scale, " ", scaleShown]),
      go,
    ]),
    problem,
    element("div", { class: "unimodel-widget__row unimodel-widget__panels" }, [
      element("figure", { class: "unimodel-widget__map" }, [grid, element("figcaption", {}, [say("codes")])]),
      element("figure", { class: "unimodel-widget__map" }, [image, element("figcaption", {}, [say("image")])]),
    ]),
    progress,
    element("p", {}, [element("strong", {}, [say("read")])]),
    element("div", { class: "unimodel-widget__row" }, [reader.node, captions]),
  );
  showCodes([]);
  drawDigit(image, new Array(64).fill(0));
  // before any use: the test 7 on the grid and the captions the chapter's `write` gave it, nothing run yet
  reader.set(examples[7]);
  captions.textContent = say("written", { zh: join(card.meta.captions.zh[7], "zh"), en: join(card.meta.captions.en[7], "en") });
  // for the tests: the page's own reading of a digit, to hold against the chapter's `write`
  root.readDigit = read;
}
