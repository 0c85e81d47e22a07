"""Figures and numbers of the hands-on unified-model chapter.

The Chameleon-style model of ``models/unified.py`` trains on the 1000
training digits (its ``train_defaults``: AdamW lr 1e-3, cosine decay, batch
64, at most 80 epochs, early stopping on the validation loss with patience
20, seed 0), after its VQ tokenizer: the VQ-VAE chapter's run, trained once
for every run of the same seed (``ModelSpec.stage``). The ablation trains
the same Transformer on generation only, on understanding only, and with a
Janus-style separate encoder for understanding, under the same budget and
early-stopping rule; so do the other families beside it: Show-o-style
(``models/masked.py``), Transfusion-style (``models/transfusion.py``, no
tokenizer) and BAGEL-style (``models/mot.py``). Captions are scored on the 447 test digits; drawings
by the logistic-regression judge of ``unimodel.metrics``, trained on the
real training digits only. The MetaQueries-style model (``models/metaqueries.py``)
takes one of these runs as its frozen reader and trains only its queries,
connector and flow-matching decoder.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import torch
from matplotlib import pyplot as plt
from matplotlib.patches import Rectangle

from unimodel.data import DIGIT_LEVELS, digits_splits
from unimodel.figures.registry import budget, compute_result, exported, figure, result, scored_splits, trains
from unimodel.figures.style import PALETTE, show_images, tr
from unimodel.models import unified
from unimodel.models.captions import LANGUAGES, NAMES
from unimodel.models.metaqueries import MetaQueries, MetaQueriesConfig
from unimodel.recipes import unified as unified_recipe
from unimodel.runs import Run, RunSpec
from unimodel.training import TrainConfig
from unimodel.website.exports import Export

SEED = 0
DEFAULTS = unified_recipe.train_defaults("digits")
TRAIN = TrainConfig(**{**DEFAULTS, "epochs": budget(full=DEFAULTS["epochs"], quick=2), "seed": SEED, "device": "cpu"})
QUICK = budget(full={}, quick={"tokenizer_epochs": 2})  # the quick profile also shortens the tokenizer's training
VARIANTS = {  # name on the page -> the config's settings; "joint" is the model of the chapter
    "joint": {},
    "generation": {"tasks": "generation"},
    "understanding": {"tasks": "understanding"},
    "janus": {"understanding_encoder": "patches"},
}
SEEDS = budget(full=(0, 1, 2), quick=(0,))  # the seeds of the families' table; the figures show seed 0
EXPERT_SEEDS = SEEDS[:2]  # the BAGEL-style comparison's seeds: its dense model twice as deep is the chapter's costliest run
PER_CLASS = budget(full=50, quick=3)  # drawings per digit and language
SCALES = (0.0, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0)  # the guidance sweep
SCALE = 1.0 / (DIGIT_LEVELS - 1)  # pixels 0..16 -> [0, 1]
UNMASKING_STEPS = (1, 2, 4, 8, 16)  # the masked model's sweep of passes K; 16 is one code per pass, as the autoregressive model draws
UNMASKING_GUIDANCE = (1.0, 3.0)  # the sweeps' guidance scales: the plain conditional model, and the chapter's default
EULER_STEPS = (1, 2, 4, 8, 16, 32)  # the Transfusion-style model's sweep of Euler steps (passes of the Transformer)


def spec(variant: str = "joint", seed: int = SEED) -> RunSpec:
    return RunSpec("unified", {**VARIANTS[variant], **QUICK}, replace(TRAIN, seed=seed))


def run(variant: str = "joint", seed: int = SEED) -> Run:
    return spec(variant, seed).load()


def masked_spec(seed: int = SEED) -> RunSpec:
    """The Show-o-style model: the chapter's settings, trained to unmask (``models/masked.py``)."""
    return RunSpec("masked", QUICK, replace(TRAIN, seed=seed))


def transfusion_spec(seed: int = SEED, **config) -> RunSpec:
    """The Transfusion-style model: the chapter's Transformer and budget, continuous patches and flow matching (``models/transfusion.py``; no tokenizer)."""
    return RunSpec("transfusion", config, replace(TRAIN, seed=seed))


CHAPTER_DROPOUT = unified.UnifiedConfig().dropout  # the Transfusion-style model trained once with the other models' dropout, to show what it costs
LONGER = 2  # and once for this many times the chapter's epochs, to show what the budget costs its unguided drawings


def longer_transfusion_spec() -> RunSpec:
    """The Transfusion-style model, seed 0, trained for LONGER times the chapter's epochs (the same early-stopping rule)."""
    spec = transfusion_spec()
    return replace(spec, train_config=replace(spec.train_config, epochs=LONGER * TRAIN.epochs))


QUERY_COUNTS = (1, 4, 16)  # the MetaQueries-style model's sweep of the number of queries N; 16 is its default, the image's positions
READER_CONTROLS = ("understanding", "untrained")  # and its other readers, beside the chapter's model (seed 0)


def metaqueries_spec(seed: int = SEED, **config) -> RunSpec:
    """The MetaQueries-style model: the chapter's budget; its frozen reader is one of the chapter's runs of the same seed (``models/metaqueries.py``)."""
    return RunSpec("metaqueries", {**QUICK, **config}, replace(TRAIN, seed=seed))


EXPERT_ROWS = {  # the BAGEL-style comparison: name on the page -> (model, config); "dense" is the chapter's model
    "dense": ("unified", {}),
    "experts": ("mot", {}),
    "dense_deep": ("unified", {"depth": 8}),  # as many parameters as the experts: two blocks' weights per layer of theirs
}


def expert_spec(row: str, seed: int = SEED) -> RunSpec:
    name, config = EXPERT_ROWS[row]
    return RunSpec(name, {**config, **QUICK}, replace(TRAIN, seed=seed))


@trains
def runs() -> list[RunSpec]:
    return (
        [spec(variant, seed) for variant in VARIANTS for seed in SEEDS]
        + [masked_spec(seed) for seed in SEEDS]
        + [expert_spec("experts", seed) for seed in SEEDS]
        + [expert_spec("dense_deep", seed) for seed in EXPERT_SEEDS]
        + [transfusion_spec(seed) for seed in SEEDS]
        + [transfusion_spec(SEED, dropout=CHAPTER_DROPOUT), longer_transfusion_spec()]
        + [metaqueries_spec(seed) for seed in SEEDS]
        + [metaqueries_spec(queries=n) for n in QUERY_COUNTS if n != MetaQueriesConfig().queries]
        + [metaqueries_spec(reader=reader) for reader in READER_CONTROLS]
    )


def _transformer_parameters(model: unified.SequenceModel) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if not name.startswith("tokenizer."))


@result("unified-model-scores")
def scores() -> dict:
    """The chapter's model, seed 0: test captions, judged drawings at its guidance scale, diversity, the judge's ceilings."""
    r = run()
    measured = unified_recipe.evaluate(r.model, scored_splits(), seed=SEED, per_class=PER_CLASS)
    per_digit = measured["generation"]["per_digit"]
    worst = int(np.argmin(per_digit))
    return {
        **measured,
        "worst_digit": worst,
        "worst_digit_accuracy": per_digit[worst],
        "parameters": _transformer_parameters(r.model),
        "epochs": len(r.result.history),
        "best_epoch": r.result.best_epoch,
        "seconds": r.result.seconds,
        "sequence_length": r.model.config.length,
        "vocabulary": r.model.config.vocab,
        "text_tokens": len(unified.TEXT_VOCAB),
    }


@result("unified-model-guidance")
def guidance() -> dict:
    """Judged accuracy and diversity of the drawings at each guidance scale (seed 0, the same noise seed at every scale)."""
    model = run().model
    rows = {}
    for s in SCALES:
        judged = unified_recipe.judged_generation(model, PER_CLASS, s, SEED)
        rows[scale_key(s)] = {"scale": s, "accuracy": judged["accuracy"], "per_language": judged["per_language"], **_diversity(model, judged["images"])}
    best = max(rows.values(), key=lambda row: row["accuracy"])
    return {"scales": rows, "best_scale": best["scale"], "best_accuracy": best["accuracy"], "samples": 10 * PER_CLASS * len(LANGUAGES)}


def scale_key(s: float) -> str:
    """A guidance scale as a key a page can name: 1.5 -> "s1_5"."""
    return f"s{s:g}".replace(".", "_")


def _summary(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "lowest": float(np.min(values)), "highest": float(np.max(values)), "values": values}


FAMILIES = {  # a row of the families' table -> its run of a seed; "joint", "janus", "generation" and "understanding" are the ablation's variants
    "joint": lambda seed: spec("joint", seed),
    "janus": lambda seed: spec("janus", seed),
    "masked": masked_spec,
    "transfusion": transfusion_spec,
    "mot": lambda seed: expert_spec("experts", seed),
    "metaqueries": metaqueries_spec,
    "generation": lambda seed: spec("generation", seed),
    "understanding": lambda seed: spec("understanding", seed),
}


@result("unified-model-families")
def families() -> dict:
    """Every family of the chapter and the two one-task controls over the seeds, all with the same data, budget and early-stopping rule:
    captions written and ranked (every learned direction), drawings at the default guidance (judged, distinct, distance to the nearest
    training digit, seconds to draw them), training seconds and epochs, each summarised over the seeds (None where a row lacks the
    task); the parameters that train (no frozen tokenizer or reader) and the passes of the network that draw an image."""
    splits = scored_splits()
    rows = {}
    for row, run_of in FAMILIES.items():
        trained = [run_of(seed).load() for seed in SEEDS]
        measured = [{**_family_scores(r.model.eval(), splits), "seconds": r.result.seconds, "epochs": len(r.result.history)} for r in trained]
        c = trained[0].model.config
        rows[row] = {
            **{key: None if measured[0][key] is None else _summary([m[key] for m in measured]) for key in measured[0]},
            "parameters": sum(p.numel() for p in trained[0].model.parameters() if p.requires_grad),
            "passes": None if c.tasks == "understanding" else getattr(c, "sample_steps", c.grid**2),
        }
    return {"seeds": list(SEEDS), "seed_count": len(SEEDS), "rows": rows}


def _family_scores(model: unified.SequenceModel, splits) -> dict:
    """One run's row of the families' table: ``unified_recipe.evaluate``'s captions and drawings (the same draws), with the drawings' seconds."""
    test, c = splits.test, model.config
    scores = dict.fromkeys(("caption_exact", "caption_ranked", "generation", "distinct", "nearest_train", "draw_seconds"))
    if c.tasks != "generation":
        scores["caption_exact"] = float(np.mean([unified_recipe.caption_accuracy(model, test.x, test.y, lang, "greedy")["exact"] for lang in LANGUAGES]))
    if unified.learned_directions(model):
        scores["caption_ranked"] = float(np.mean([unified_recipe.ranked_accuracy(model, test.x, test.y, lang)["learned"] for lang in LANGUAGES]))
    if c.tasks != "understanding":
        judged = unified_recipe.judged_generation(model, PER_CLASS, None, SEED)
        diversity = _diversity(model, judged["images"])
        scores |= {
            "generation": judged["accuracy"],
            "distinct": diversity["distinct"],
            "nearest_train": diversity["nearest_train"],
            "draw_seconds": judged["seconds"],
        }
    return scores


def _by_seed(row: dict) -> dict:
    """A row of the families' table as a family's section reads it: each seed's captions, drawings, seconds and epochs, and their means."""
    keys = [key for key in ("caption_exact", "caption_ranked", "generation", "seconds", "epochs") if row[key] is not None]
    seeds = {f"seed{seed}": {key: row[key]["values"][i] for key in keys} for i, seed in enumerate(SEEDS)}
    return {"seeds": seeds, "mean": {key: row[key]["mean"] for key in keys}}


def _diversity(model: unified.SequenceModel, images: torch.Tensor) -> dict:
    """``unified_recipe.diversity`` of drawings (n, 64) against the training digits, and the test digits' distances beside."""
    splits = scored_splits()
    return unified_recipe.diversity(images, model.rebuilt(splits.train.x), splits.train.x * SCALE, splits.test.x * SCALE)


def _judged_rows(model: unified.SequenceModel, **drawing) -> dict:
    """Drawings of ``model`` at each guidance scale of UNMASKING_GUIDANCE: judged accuracy and confidence, diversity, seconds."""
    rows = {}
    for s in UNMASKING_GUIDANCE:
        judged = unified_recipe.judged_generation(model, PER_CLASS, s, SEED, **drawing)
        rows[scale_key(s)] = {**{key: judged[key] for key in ("accuracy", "confidence", "seconds")}, **_diversity(model, judged["images"])}
    return rows


@result("unified-model-masked", uses=("unified-model-families",))
def masked() -> dict:
    """The Show-o-style model over the seeds (captions written and ranked by reading, drawings at its default passes and guidance), and, for
    seed 0, its drawings at each number of passes K and each guidance scale of the sweep, beside the autoregressive model's (the chapter's, seed 0)."""
    model = masked_spec().load().model.eval()
    rows = compute_result("unified-model-families")["rows"]
    chameleon = rows["joint"]
    return {
        **_by_seed(rows["masked"]),
        "parameters": _transformer_parameters(model),
        "default_steps": model.config.sample_steps,
        "samples": 10 * PER_CLASS * len(LANGUAGES),
        "steps": {f"k{K}": {"steps": K, **_judged_rows(model, steps=K)} for K in UNMASKING_STEPS},
        "autoregressive": {
            "steps": model.config.grid**2,
            **_judged_rows(run().model.eval()),
            "generation_mean": chameleon["generation"]["mean"],
            "caption_exact_mean": chameleon["caption_exact"]["mean"],
            "caption_ranked_mean": chameleon["caption_ranked"]["mean"],
            "seconds_trained": chameleon["seconds"]["mean"],
        },
    }


@result("unified-model-transfusion", uses=("unified-model-masked", "unified-model-families"))
def transfusion() -> dict:
    """The Transfusion-style model over the seeds (captions written and ranked by reading, drawings at its default Euler steps and guidance),
    the same model trained with the chapter's dropout and for LONGER times the epochs (seed 0; the latter's drawings at the default
    steps and each guidance scale of the sweep), and, for seed 0, its drawings at each number of Euler steps and each guidance
    scale of the sweep; the autoregressive model's row is the masked section's (the chapter's model, seed 0, the same drawing seeds)."""
    first = transfusion_spec().load()
    model = first.model.eval()
    splits = scored_splits()
    with_dropout = transfusion_spec(SEED, dropout=CHAPTER_DROPOUT).load()
    longer = longer_transfusion_spec().load()
    return {
        **_by_seed(compute_result("unified-model-families")["rows"]["transfusion"]),
        "with_dropout": {"dropout": CHAPTER_DROPOUT, **_measured(with_dropout, splits)},
        "longer": {"epochs_allowed": LONGER * TRAIN.epochs, **_measured(longer, splits), **_judged_rows(longer.model.eval())},
        "parameters": _transformer_parameters(model),
        "default_steps": model.config.sample_steps,
        "flow_weight": model.config.flow_weight,
        "training_steps": len(first.result.history) * math.ceil(len(splits.train.y) / TRAIN.batch_size),  # seed 0's
        "samples": 10 * PER_CLASS * len(LANGUAGES),
        "steps": {f"k{K}": {"steps": K, **_judged_rows(model, steps=K)} for K in EULER_STEPS},
        "autoregressive": compute_result("unified-model-masked")["autoregressive"],
    }


@result("unified-model-metaqueries", uses=("unified-model-families", "unified-model-transfusion"))
def metaqueries() -> dict:
    """The MetaQueries-style model over the seeds (its frozen reader the chapter's model of the same seed), what training changed in its
    reader, and, for seed 0: each reader of the comparison and each number of queries of the sweep, with their drawings at each guidance
    scale of the sweep; how each reader tells the digits' names apart (its input embeddings and its states at the queries) and which
    digits its wrong drawings are; and the time to draw, beside the Transfusion-style model's in the same process."""
    splits = scored_splits()
    first = metaqueries_spec().load()
    model = first.model.eval()
    families = compute_result("unified-model-families")["rows"]
    over_seeds = _by_seed(families["metaqueries"])
    readers = {"joint": first, **{reader: metaqueries_spec(reader=reader).load() for reader in READER_CONTROLS}}
    swept = {n: first if n == model.config.queries else metaqueries_spec(queries=n).load() for n in QUERY_COUNTS}
    flow = compute_result("unified-model-transfusion")
    return {
        **over_seeds,
        "untouched": _untouched(splits),
        "readers": {
            name: {
                **(over_seeds["seeds"][f"seed{SEED}"] if name == "joint" else _measured(r, splits)),
                **_judged_rows(r.model.eval()),
                "names": _name_similarity(r.model.eval()),
                "wrong_same_parity": _wrong_same_parity(r.model.eval()),
            }
            for name, r in readers.items()
        },
        "queries": {f"n{n}": {"queries": n, **_judged_rows(r.model.eval())} for n, r in swept.items()},
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "reader_parameters": _transformer_parameters(model.reader),
        "default_queries": model.config.queries,
        "sample_steps": model.config.sample_steps,
        "training_steps": len(first.result.history) * math.ceil(len(splits.train.y) / TRAIN.batch_size),  # seed 0's
        "samples": 10 * PER_CLASS * len(LANGUAGES),
        "chameleon": {key: families["joint"][key]["mean"] for key in ("caption_exact", "generation")},
        "transfusion": {"generation": flow["mean"]["generation"]},
        "drawing_seconds": {  # drawing the same prompts at s = 3 in K = 16 steps, one model after the other in this process
            "metaqueries": unified_recipe.judged_generation(model, PER_CLASS, 3.0, SEED)["seconds"],
            "transfusion": unified_recipe.judged_generation(transfusion_spec().load().model.eval(), PER_CLASS, 3.0, SEED, steps=16)["seconds"],
        },
    }


def _untouched(splits) -> dict:
    """What training the queries, the connector and the decoder changed in the frozen reader, over the seeds: tensors of its weights
    that differ from its run's, and written test captions (both languages) that differ from those the run itself writes."""
    tensors = captions = compared = 0
    for seed in SEEDS:
        reader, trained = run("joint", seed).model.eval(), metaqueries_spec(seed).load().model.eval()
        before, after = reader.state_dict(), trained.reader.state_dict()
        tensors += sum(not torch.equal(before[key], after[key]) for key in before)
        for lang in LANGUAGES:
            written = unified.write(reader, splits.test.x, lang), unified.write(trained, splits.test.x, lang)
            captions += sum(a != b for a, b in zip(*written, strict=True))
            compared += len(written[0])
    return {"changed_tensors": tensors, "tensors": len(before), "changed_captions": captions, "captions": compared}


def _wrong_same_parity(model: unified.SequenceModel) -> float | None:
    """Of the drawings at guidance 3 that the judge reads as another digit than the prompted one, the share read as a digit of the same
    parity (4 of the 9 other digits: 44% if a wrong digit were any other one); None when none is wrong."""
    judged = unified_recipe.judged_generation(model, PER_CLASS, 3.0, SEED)
    wrong = judged["read"] != judged["prompted"]
    return float(np.mean(judged["read"][wrong] % 2 == judged["prompted"][wrong] % 2)) if wrong.any() else None


def _name_similarity(model: MetaQueries) -> dict:
    """How a MetaQueries-style model's reader tells the ten digits' names apart, per language then averaged: the mean cosine similarity
    of two names (each minus the mean of the ten) when their digits have the same parity, and when they do not; for the reader's input
    embeddings of the names ("embedding") and for its last states at the trained queries after ``[BOS] name [BOI]`` ("states": what
    the connector reads)."""
    pairs: dict = {"embedding": ([], []), "states": ([], [])}
    for lang in LANGUAGES:
        names = unified.token_ids(list(NAMES[lang]))
        for kind, vectors in (("embedding", model.reader.embed.weight.detach()[names]), ("states", _reader_states(model, names))):
            vectors = torch.nn.functional.normalize(vectors - vectors.mean(0), dim=1)
            cosine = vectors @ vectors.T
            for i in range(10):
                for j in range(i + 1, 10):
                    pairs[kind][i % 2 != j % 2].append(float(cosine[i, j]))
    return {f"{kind}_{parity}": float(np.mean(values[k])) for kind, values in pairs.items() for k, parity in enumerate(("same_parity", "other_parity"))}


def _reader_states(model: MetaQueries, prompts: torch.Tensor) -> torch.Tensor:
    """The frozen reader's last states at the queries for each prompt id, flattened, (B, N·D): the input of the connector's first block."""
    captured = []
    hook = model.connector[0].register_forward_pre_hook(lambda block, args: captured.append(args[0].detach()))
    try:
        with torch.no_grad():
            for prompt in prompts:
                model.conditions(prompt[None])
    finally:
        hook.remove()
    return torch.cat(captured).flatten(1)


@result("unified-model-experts", uses=("unified-model-families",))
def experts() -> dict:
    """The BAGEL-style mixture of experts beside the dense model at the same compute per token (the chapter's) and at the same parameters
    (twice as deep), over the seeds: captions written and ranked, drawings, parameters, epochs, and one training step's time."""
    splits = scored_splits()
    families = compute_result("unified-model-families")["rows"]  # the chapter's model and the experts, measured there
    table: dict = {}
    for row in EXPERT_ROWS:
        measured = []
        for i, seed in enumerate(EXPERT_SEEDS):
            r = expert_spec(row, seed).load()
            family = {"dense": "joint", "experts": "mot"}.get(row)
            scores = {key: families[family][key]["values"][i] for key in SCORED} if family else _scores(r.model, splits)
            measured.append({**scores, "epochs": len(r.result.history)})
        table[row] = {
            **{key: _summary([m[key] for m in measured]) for key in SCORED},
            "epochs": float(np.mean([m["epochs"] for m in measured])),
            "parameters": _transformer_parameters(r.model),
            "step_ms": 1000 * _step_seconds(r.model, splits),
        }
    return {"rows": table, "seed_count": len(EXPERT_SEEDS), "step_batch": STEP_BATCH}


STEP_BATCH = 64  # the training batch
STEP_REPEATS = budget(full=20, quick=2)  # timed training steps of each model in the experts table, after 3 to warm up
SCORED = ("caption_exact", "caption_ranked", "generation")


def _step_seconds(model: unified.SequenceModel, splits, steps: int = STEP_REPEATS) -> float:
    """Median seconds of one training step (loss and gradients, no update) on a batch of training digits, after 3 to warm up (a build: one thread)."""
    model.train()
    batch = (splits.train.x[:STEP_BATCH], splits.train.y[:STEP_BATCH])
    torch.manual_seed(SEED)
    times = []
    for i in range(steps + 3):
        started = time.perf_counter()
        model(batch)[0].backward()
        if i >= 3:
            times.append(time.perf_counter() - started)
    model.zero_grad(set_to_none=True)
    model.eval()
    return float(np.median(times))


def _scores(model: unified.SequenceModel, splits) -> dict:
    """Written captions, ranked captions (every learned direction) and judged drawings at the model's guidance."""
    scores = _family_scores(model.eval(), splits)
    return {key: scores[key] for key in SCORED}


def _measured(r: Run, splits) -> dict:
    """A run's ``_scores``, its training seconds and its epochs."""
    return {**_scores(r.model, splits), "seconds": r.result.seconds, "epochs": len(r.result.history)}


# ------------------------------------------------------------------ figures


@figure("unified-model/sequences")
def sequences(lang: str):
    """The two training sequences of one test digit, token by token; the tokens the loss counts are filled."""
    model = run().model
    test = scored_splits().test
    x, y = test.x[:1], test.y[:1]
    codes = model.codes(x)
    language = torch.tensor([LANGUAGES.index(lang)])  # the page's language
    rows = [
        (tr(lang, "生成", "generation"), *unified.generation_sequence(unified.prompt_ids(y, language), codes)),
        (tr(lang, "理解", "understanding"), *unified.understanding_sequence(codes, language, unified.caption_ids(y, language))),
    ]
    T = max(ids.shape[1] for _, ids, _ in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(T * 0.5, 2.2))
    for ax, (title, ids, target) in zip(axes, rows):
        for t, (token, counted) in enumerate(zip(ids[0].tolist(), target[0].tolist())):
            is_code = token >= len(unified.TEXT_VOCAB)
            label = str(token - len(unified.TEXT_VOCAB)) if is_code else unified.TEXT_VOCAB[token]
            color = PALETTE[1] if is_code else PALETTE[0]
            ax.add_patch(Rectangle((t, 0), 0.92, 1, facecolor=color if counted else "white", edgecolor=color, linewidth=1.2))
            ax.text(t + 0.46, 0.5, label, ha="center", va="center", fontsize=6.5 if len(label) > 3 else 8, color="white" if counted else "black")
        ax.set_xlim(-0.1, T)
        ax.set_ylim(-0.1, 1.1)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(title, fontsize=9, loc="left")
    fig.text(
        0.5,
        0.0,
        tr(lang, "蓝：文字 token　橙：图像码字　实心：计入损失的目标", "blue: text tokens   orange: image codes   filled: the targets the loss counts"),
        ha="center",
        fontsize=8,
    )
    return fig


@figure("unified-model/samples")
def samples(lang: str):
    """Drawings for each digit's name, five prompted in Chinese and five in English, at the model's guidance scale."""
    model = run().model
    generator = torch.Generator().manual_seed(SEED)
    per_language = 5
    prompts = [NAMES[language][d] for d in range(10) for language in LANGUAGES for _ in range(per_language)]
    images = unified.draw(model, prompts, generator=generator).numpy()
    fig, ax = plt.subplots(figsize=(6.2, 6.4))
    show_images(ax, images, rows=10)
    ax.set_title(
        tr(
            lang,
            f"每行一个数字：左 {per_language} 张用英文提示，右 {per_language} 张用中文提示（引导系数 {model.config.guidance:g}）",
            f"one digit per row: {per_language} English prompts, then {per_language} Chinese (guidance {model.config.guidance:g})",
        ),
        fontsize=9,
    )
    return fig


@figure("unified-model/guidance")
def guidance_figure(lang: str):
    """Judged accuracy and the share of distinct drawings against the guidance scale, with the judge's accuracy on tokenized real digits."""
    measured = compute_result("unified-model-guidance")
    main = compute_result("unified-model-scores")
    rows = sorted(measured["scales"].values(), key=lambda row: row["scale"])  # the cache stores keys sorted by name
    scales = [row["scale"] for row in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.plot(scales, [100 * r["accuracy"] for r in rows], "o-", color=PALETTE[0], label=tr(lang, "评判器认为画对了", "judged the prompted digit"))
    ax.plot(scales, [100 * r["distinct"] for r in rows], "s--", color=PALETTE[2], label=tr(lang, "互不相同的图", "distinct drawings"))
    ax.axhline(100 * main["judge_tokenized"], color=PALETTE[3], linestyle=":", linewidth=1)
    ax.text(
        scales[-1],
        100 * main["judge_tokenized"] - 2,
        tr(lang, "评判器读真实测试图（经分词器往返）", "the judge on real test digits (through the tokenizer)"),
        ha="right",
        va="top",
        fontsize=8,
        color=PALETTE[3],
    )
    ax.set_xlabel(tr(lang, "引导系数 s", "guidance scale s"))
    ax.set_ylabel("%")
    ax.set_ylim(0, 103)
    ax.legend(fontsize=8, frameon=False, loc="center right")
    return fig


@figure("unified-model/captions")
def captions(lang: str):
    """Test digits with the caption the model writes (greedy) in the page's language; wrong ones in red."""
    model = run().model
    test = scored_splits().test
    x, y = test.x[:24], test.y[:24]
    written = unified.caption(model, x, lang, "greedy")
    fig, axes = plt.subplots(3, 8, figsize=(8.8, 3.9))
    for ax, image, words, digit in zip(axes.flat, x, written, y):
        show_images(ax, image[None].numpy() * SCALE, rows=1)
        right = words == unified.caption_words(int(digit), lang)
        ax.set_title(unified.caption_text(words, lang), fontsize=8, color="black" if right else PALETTE[3])
    fig.tight_layout()
    return fig


SHOWN_READINGS = 3  # test digits in the reading figure


def _reading_scores(model: unified.Unified, x: torch.Tensor, lang: str) -> dict[str, torch.Tensor]:
    """Each direction's caption scores of the images x, (B, 10), and their sum."""
    scores = {direction: unified.caption_scores(model, x, lang, (direction,)) for direction in unified.DIRECTIONS}
    return {**scores, "both": scores["read"] + scores["draw"]}


@result("unified-model-reading")
def reading() -> dict:
    """Ranked captions of the chapter's model, per language: the share of test digits reading alone, drawing alone and both get right, how many adding the drawing term fixes and breaks, and how often the written caption is the one reading alone ranks first.

    "shown": the first test digits that reading alone gets wrong and both directions together
    get right (the figure's), each with every direction's p(digit | image).
    """
    model = run().model
    test = scored_splits().test
    out: dict = {"test_digits": len(test.y)}
    for lang in LANGUAGES:
        scores = _reading_scores(model, test.x, lang)
        right = {name: (s.argmax(1) == test.y) for name, s in scores.items()}
        written = unified.caption(model, test.x, lang, "greedy")
        read_best = [unified.caption_words(int(d), lang) for d in scores["read"].argmax(1)]
        fixed = (~right["read"] & right["both"]).nonzero()[:, 0].tolist()
        shown = (fixed + [i for i in range(len(test.y)) if i not in fixed])[:SHOWN_READINGS]  # a barely trained model may fix fewer
        out[lang] = {
            **{name: float(r.float().mean()) for name, r in right.items()},
            "fixed": len(fixed),
            "broken": int((right["read"] & ~right["both"]).sum()),
            "written_is_read_best": float(np.mean([w == r for w, r in zip(written, read_best)])),  # greedy writing vs ranking by reading alone
            "shown": [{"index": i, "digit": int(test.y[i]), **{name: s[i].softmax(0).tolist() for name, s in scores.items()}} for i in shown],
        }
    return out


@figure("unified-model/reading")
def reading_figure(lang: str):
    """The first three test digits that reading alone gets wrong and both directions together get right: each direction's p(digit | image)."""
    shown = compute_result("unified-model-reading")[lang]["shown"]
    test = scored_splits().test
    columns = {
        "read": tr(lang, "读：p(描述 | 图)", "read: p(caption | image)"),
        "draw": tr(lang, "画：p(图 | 名字)，经贝叶斯公式", "draw: p(image | name), by Bayes"),
        "both": tr(lang, "两者相乘，再归一化", "the two multiplied, renormalized"),
    }
    fig, axes = plt.subplots(len(shown), 1 + len(columns), figsize=(10, 1.7 * len(shown)), gridspec_kw={"width_ratios": [0.5, 1, 1, 1]}, squeeze=False)
    for r, (row, digit) in enumerate(zip(axes, shown)):
        i = digit["index"]
        show_images(row[0], test.x[i : i + 1].numpy() * SCALE, rows=1)
        for ax, (name, title) in zip(row[1:], columns.items()):
            colors = [PALETTE[2] if d == digit["digit"] else PALETTE[7] for d in range(10)]
            ax.bar(range(10), digit[name], color=colors)
            ax.set_xticks(range(10), [str(d) for d in range(10)], fontsize=7)
            ax.set_yticks([])
            ax.set_ylim(0, 1.05)
            ax.spines[["left", "top", "right"]].set_visible(False)
            if r == 0:
                ax.set_title(title, fontsize=9)
    fig.text(0.5, 0.0, tr(lang, "绿色：图中真正的数字", "green: the digit the image really shows"), ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


@figure("unified-model/nearest")
def nearest(lang: str):
    """Is it copying? Drawings beside their nearest training digit, and the distances to the nearest training digit of drawings and of real test digits."""
    model = run().model
    splits = scored_splits()
    generator = torch.Generator().manual_seed(SEED)
    shown = unified.draw(model, [NAMES["en"][d] for d in range(10)], generator=generator)
    train = splits.train.x.float() * SCALE
    closest = train[torch.cdist(shown, train).argmin(1)]
    judged = unified_recipe.judged_generation(model, PER_CLASS, None, SEED)
    drawn = torch.cdist(judged["images"], train).min(1).values.numpy()
    real = torch.cdist(splits.test.x.float() * SCALE, train).min(1).values.numpy()
    fig = plt.figure(figsize=(9, 3.2))
    top = fig.add_axes([0.0, 0.55, 0.45, 0.35])
    show_images(top, shown.numpy(), rows=1, title=tr(lang, "画出的数字", "drawn"))
    bottom = fig.add_axes([0.0, 0.1, 0.45, 0.35])
    show_images(bottom, closest.numpy(), rows=1, title=tr(lang, "离它最近的训练图", "nearest training digit"))
    right = fig.add_axes([0.55, 0.18, 0.43, 0.7])
    bins = np.linspace(0, max(drawn.max(), real.max()), 30)
    right.hist(real, bins=bins, alpha=0.6, color=PALETTE[7], density=True, label=tr(lang, "真实测试图", "real test digits"))
    right.hist(drawn, bins=bins, alpha=0.6, color=PALETTE[1], density=True, label=tr(lang, "画出的数字", "drawn digits"))
    right.set_xlabel(tr(lang, "到最近训练图的距离（L2，像素在 [0, 1]）", "distance to the nearest training digit (L2, pixels in [0, 1])"))
    right.set_yticks([])
    right.legend(fontsize=8, frameon=False)
    return fig


@figure("unified-model/ablation")
def ablation_figure(lang: str):
    """Written captions, ranked captions and judged drawings of each variant (mean over seeds, the bar; each seed, a dot)."""
    measured = compute_result("unified-model-families")["rows"]
    names = {
        "joint": tr(lang, "两个任务一起\n（Chameleon 式）", "both tasks\n(Chameleon-style)"),
        "generation": tr(lang, "只训练生成", "generation\nonly"),
        "understanding": tr(lang, "只训练理解", "understanding\nonly"),
        "janus": tr(lang, "两个任务一起\n理解用独立编码器\n（Janus 式）", "both tasks,\nseparate encoder\nto read (Janus-style)"),
    }
    panels = {
        "caption_exact": tr(lang, "逐词写描述：完全正确", "captions written word by word"),
        "caption_ranked": tr(lang, "用学过的所有方向给描述打分", "captions ranked by every\ndirection it learned"),
        "generation": tr(lang, "画图：评判器认为画对了", "drawings: judged right"),
    }
    fig, axes = plt.subplots(1, len(panels), figsize=(13.5, 3.6), sharey=True)
    for ax, (key, title) in zip(axes, panels.items()):
        for i, variant in enumerate(VARIANTS):
            row = measured[variant][key]
            if row is None:
                ax.text(i, 3, tr(lang, "不训练", "not trained"), ha="center", fontsize=8, color=PALETTE[7])
                continue
            ax.bar(i, 100 * row["mean"], color=PALETTE[i], alpha=0.85)
            ax.scatter([i] * len(row["values"]), [100 * v for v in row["values"]], color="black", s=10, zorder=3)
            ax.text(i, 100 * row["mean"] + 2, f"{100 * row['mean']:.1f}", ha="center", fontsize=8)
        ax.set_xticks(range(len(VARIANTS)), [names[v] for v in VARIANTS], fontsize=7.5)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, 108)
    axes[0].set_ylabel("%")
    fig.tight_layout()
    return fig


def _drawings_by_steps(model: unified.SequenceModel, steps: tuple[int, ...], title: str):
    """The drawings of the ten digits' English names at each number of passes K in ``steps`` (one row each), at guidance 1, the same seed in every row."""
    prompts = [NAMES["en"][d] for d in range(10)]
    rows = [model.eval().generate_images(prompts, 1.0, torch.Generator().manual_seed(SEED), steps=K) for K in steps]
    fig, ax = plt.subplots(figsize=(6.2, 0.55 + 0.61 * len(steps)))
    show_images(ax, torch.cat(rows).numpy(), rows=len(steps))
    for i, K in enumerate(steps):  # a tile is 8 pixels and a 1-pixel gap
        ax.text(-1, 5 + 9 * i, f"K = {K}", ha="right", va="center", fontsize=9)
    ax.set_title(title, fontsize=9)
    return fig


def _quality_by_steps(lang: str, measured: dict, family: tuple[str, str], axis: tuple[str, str]):
    """Judged accuracy and the judge's confidence of one family's drawings against its passes K (``measured``: its result), at guidance 1
    and 3, with the autoregressive model's at 16 passes; ``family``: its name, ``axis``: what K counts, in Chinese and English."""
    rows = sorted(measured["steps"].values(), key=lambda row: row["steps"])
    steps = [row["steps"] for row in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6))
    panels = {
        "accuracy": tr(lang, "评判器认为画对了（%）", "judged the prompted digit (%)"),
        "confidence": tr(lang, "评判器给所提示数字的平均概率（%）", "judge's mean probability of the prompted digit (%)"),
    }
    for ax, (key, title) in zip(axes, panels.items()):
        for i, s in enumerate(UNMASKING_GUIDANCE):
            color = PALETTE[i]
            ax.plot(
                steps, [100 * row[scale_key(s)][key] for row in rows], "o-", color=color, label=tr(lang, f"{family[0]}，s = {s:g}", f"{family[1]}, s = {s:g}")
            )
            ax.scatter(
                [measured["autoregressive"]["steps"]],
                [100 * measured["autoregressive"][scale_key(s)][key]],
                marker="*",
                s=90,
                color=color,
                zorder=3,
                label=tr(lang, f"自回归（16 次），s = {s:g}", f"autoregressive (16 passes), s = {s:g}"),
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(steps, [str(K) for K in steps])
        ax.set_xlabel(tr(lang, *axis))
        ax.set_title(title, fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7.5, frameon=False, loc="lower center", ncol=len(labels))  # below the panels, over no curve
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


@figure("unified-model/unmasking-samples")
def unmasking_samples(lang: str):
    """The Show-o-style model's drawings of the ten digits' English names at each number of passes K, at guidance 1, with the same seed in every row."""
    title = tr(lang, "每行：用 K 次前向揭开 16 个码字（引导系数 1）", "each row: the 16 codes revealed in K passes (guidance 1)")
    return _drawings_by_steps(masked_spec().load().model, UNMASKING_STEPS, title)


@figure("unified-model/unmasking-steps")
def unmasking_steps(lang: str):
    """Judged accuracy and the judge's confidence of the masked model's drawings against K, at guidance 1 and 3, with the autoregressive model's at 16 passes."""
    return _quality_by_steps(lang, compute_result("unified-model-masked"), ("掩码式", "masked"), ("画一张图的前向次数 K", "passes K to draw an image"))


@figure("unified-model/flow-samples")
def flow_samples(lang: str):
    """The Transfusion-style model's drawings of the ten digits' English names after K Euler steps, at guidance 1, with the same noise in every row."""
    title = tr(lang, "每行：从噪声出发走 K 步欧拉法（引导系数 1）", "each row: K Euler steps from noise (guidance 1)")
    return _drawings_by_steps(transfusion_spec().load().model, EULER_STEPS, title)


@figure("unified-model/flow-steps")
def flow_steps(lang: str):
    """Judged accuracy and the judge's confidence of the Transfusion-style model's drawings against its Euler steps K, at guidance 1 and 3, with the autoregressive model's."""
    axis = ("欧拉步数 K（每步一次前向）", "Euler steps K (one pass each)")
    return _quality_by_steps(lang, compute_result("unified-model-transfusion"), ("Transfusion 式", "Transfusion-style"), axis)


@figure("unified-model/metaqueries-readers")
def metaqueries_readers(lang: str):
    """The MetaQueries-style model's drawings of the ten digits' English names (two rows, two noise seeds), at guidance 3, for each frozen reader (seed 0)."""
    labels = {
        "joint": tr(lang, "本章的模型（学过写描述和画图）", "the chapter's model (captions and drawings)"),
        "understanding": tr(lang, "只学过写描述", "trained on captions only"),
        "untrained": tr(lang, "未训练（随机权重）", "untrained (random weights)"),
    }
    prompts = [NAMES["en"][d] for d in range(10)]
    rows = []
    for reader in labels:
        model = metaqueries_spec(**({} if reader == "joint" else {"reader": reader})).load().model.eval()
        rows += [model.generate_images(prompts, 3.0, torch.Generator().manual_seed(seed)) for seed in (SEED, SEED + 1)]
    fig, ax = plt.subplots(figsize=(6.2, 0.55 + 0.61 * len(rows)))
    show_images(ax, torch.cat(rows).numpy(), rows=len(rows))
    for i, label in enumerate(labels.values()):  # a tile is 8 pixels and a 1-pixel gap; two rows per reader
        ax.text(-1, 9.5 + 18 * i, label, ha="right", va="center", fontsize=9)
        if i:
            ax.axhline(18 * i - 1, color=PALETTE[0], linewidth=1.5)  # in the gap between two readers' rows
    ax.set_title(
        tr(lang, "冻结的阅读器不同，画出的数字（从左到右：0 到 9，引导系数 3）", "by frozen reader: zero to nine, left to right (guidance 3)"), fontsize=9
    )
    return fig


def _first_of_each_digit() -> torch.Tensor:
    """The first test image of each digit, (10, 64) pixel levels."""
    test = digits_splits().test
    return test.x[[int(torch.nonzero(test.y == digit)[0]) for digit in range(10)]]


@exported("unified-model/transformer")
def transformer_widget() -> Export:
    """The chapter's Transformer for the page's widget: two sequences of ids (2, L), padded to the longest, -> next-token logits (2, L, V).

    The widget draws (two rows: with the prompt and with [NULL], for guidance) and writes captions (one row per
    language) with it; the mask is causal, so padding after a position never changes that position's logits.
    ``meta["captions"]``: the greedy captions ``unified.write`` gives the example digits, which the widget must repeat.
    """
    model = run().model.eval()
    c, examples = model.config, _first_of_each_digit()
    seven = examples[7:8]
    drawn, _ = unified.generation_sequence(torch.tensor([unified.TOKEN_ID[NAMES["en"][7]]]), model.codes(seven))
    read = unified.understanding_prompt(model.codes(seven), torch.tensor([LANGUAGES.index("zh")]))
    pad = lambda ids: torch.cat([ids, torch.full((1, c.length - ids.shape[1]), unified.TOKEN_ID[unified.PAD])], 1)  # noqa: E731
    meta = {
        "text_vocab": list(unified.TEXT_VOCAB),
        "names": {lang: list(NAMES[lang]) for lang in LANGUAGES},
        "words": list(unified.WORDS),
        "caption_words": unified.CAPTION_WORDS,
        "language_tokens": unified.LANGUAGE_TOKEN,
        "codes": c.grid**2,
        "guidance": c.guidance,
        "levels": DIGIT_LEVELS,
        "examples": examples.tolist(),
        "captions": {lang: unified.write(model, examples, lang) for lang in LANGUAGES},
    }
    example = {"ids": torch.cat([pad(drawn), pad(read)]).float()}
    return Export(model, lambda m, ids: m.logits(ids.long()), example, ("logits",), meta)


@exported("unified-model/tokenizer")
def tokenizer_widget() -> Export:
    """The chapter's VQ tokenizer for the page's widget: codes (1, N) -> the decoded image (1, 64) in [0, 1]; an image (1, 64) -> its codes (1, N)."""
    model = run().model.eval()
    seven = _first_of_each_digit()[7:8]
    example = {"codes": model.codes(seven).float(), "x": seven.float()}
    return Export(model, lambda m, codes, x: (m.tokenizer.decode(codes.long()), m.codes(x).float()), example, ("image", "codes_of_x"))
