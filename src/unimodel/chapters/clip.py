"""Figures and numbers of the CLIP chapter.

One CLIP (a 4x4-patch ViT for the images, a small Transformer for the
captions) trains on the 1000 training digits with captions drawn from
templates in both languages (``train_defaults`` of ``recipes/clip.py``, seed
0). It is scored on the 447 test digits: zero-shot classification with
prompts never seen as training captions, retrieval both ways, and a linear
probe on its frozen image embeddings. ``clip-controls`` scores the same run
on control prompts (the name at a place no training template puts it, the
name alone, a new combination of known words, the attributes without the
name) to show what the zero-shot test measures: every caption is a function
of the label, so "zero-shot" here means new wording, not new concepts.
"""

from __future__ import annotations

import math

import torch
from matplotlib import pyplot as plt
from torch.nn import functional as F

from unimodel import metrics
from unimodel.chapters.vit import linear_probe
from unimodel.data import DIGIT_LEVELS, digits_splits
from unimodel.figures.registry import budget, compute_result, exported, figure, result, trains
from unimodel.figures.style import PALETTE, tr
from unimodel.models import captions, clip
from unimodel.recipes import clip as clip_recipe
from unimodel.runs import Run, RunSpec
from unimodel.training import TrainConfig
from unimodel.website.exports import Export

SEED = 0
TRAIN = TrainConfig(
    **{**clip_recipe.train_defaults("digits"), "epochs": budget(full=clip_recipe.train_defaults("digits")["epochs"], quick=3), "seed": SEED, "device": "cpu"}
)
BATCH_SHOWN = 10  # images (one per digit) in the similarity-matrix figure


SPEC = RunSpec("clip", {}, TRAIN)


def run() -> Run:
    return SPEC.load()


@trains
def runs() -> list[RunSpec]:
    return [SPEC]


def _zero_shot(model: clip.CLIP, x: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities of one image to P prompts given as token ids (P, L), and their softmax at the learned scale, each (1, P)."""
    similarity = model.embed_images(x) @ F.normalize(model.text(ids.long()), dim=1).T  # (1, P)
    return similarity, (model.scale() * similarity).softmax(-1)


@exported("clip/clip")
def zero_shot_widget() -> Export:
    """The chapter's CLIP for the page's widget: a drawn digit and 10 prompts the reader may edit -> similarities and probabilities.

    The widget tokenizes the prompts itself, as ``captions.tokenize`` does, from the vocabulary in ``meta``.
    """
    test = digits_splits().test
    first = [int(torch.nonzero(test.y == digit)[0]) for digit in range(10)]  # the first test digit of each class
    meta = {
        "vocabulary": list(captions.VOCAB),
        "context": captions.CONTEXT,
        "prompts": {lang: captions.prompts(lang) for lang in captions.LANGUAGES},
        "examples": test.x[first].tolist(),
        "levels": DIGIT_LEVELS,
    }
    example = {"x": test.x[first[7]][None].float(), "ids": captions.tokenize(captions.prompts("en")).float()}
    return Export(run().model, _zero_shot, example, ("similarities", "probabilities"), meta)


@result("clip-scores")
def scores() -> dict:
    """Zero-shot accuracy and retrieval in both languages, the linear probe against raw pixels, the temperature."""
    r = run()
    splits = digits_splits()
    model = r.model
    table: dict = {"epochs": len(r.result.history), "best_epoch": r.result.best_epoch, "seconds": r.result.seconds}
    for lang in ("en", "zh"):
        table[lang] = {
            "zero_shot": clip_recipe.zero_shot_accuracy(model, splits.test.x, splits.test.y, lang),
            **clip_recipe.retrieval_recall_at_1(model, splits.test.x, splits.test.y, lang, torch.Generator().manual_seed(SEED)),
            "prompts": captions.prompts(lang),
        }
    train_features = clip.image_features(model, splits.train.x).numpy()
    test_features = clip.image_features(model, splits.test.x).numpy()
    table["probe"] = linear_probe(train_features, splits.train.y.numpy(), test_features, splits.test.y.numpy())
    table["pixels_probe"] = metrics.judge_accuracy_on_test()  # the same logistic regression on raw pixels: the judge
    table["temperature"] = {"start": r.result.history[0]["temperature"], "end": r.result.history[-1]["temperature"]}
    table["loss"] = {"start": r.result.history[0]["loss"], "end": r.result.history[-1]["loss"]}
    table["loss_floor"] = loss_floor(splits.train.y, TRAIN.batch_size)
    return table


def loss_floor(labels: torch.Tensor, batch_size: int) -> float:
    """The lowest mean InfoNCE over an epoch when nothing but the digit can be read from an image: the mean of E[ln K].

    K counts the pairs of a batch that show the same digit as a given pair, that pair included: an
    image cannot tell which of their captions was drawn for it, so at best it spreads its probability
    evenly over them and pays ln K (and so does each caption over their images). For a pair of a digit
    with share p in a batch of b, K - 1 is Binomial(b - 1, p); an epoch of n pairs is n // B full
    batches and, if n % B, one smaller last batch, averaged step by step as the loss is.
    """
    shares = torch.bincount(labels, minlength=10).double() / len(labels)

    def floor(b: int) -> float:
        return sum(p * sum(math.comb(b - 1, k) * p**k * (1 - p) ** (b - 1 - k) * math.log(1 + k) for k in range(b)) for p in shares.tolist())

    sizes = [batch_size] * (len(labels) // batch_size) + ([len(labels) % batch_size] if len(labels) % batch_size else [])
    return sum(floor(b) for b in sizes) / len(sizes)


# --8<-- [start:controls]
# Control prompt sets for the zero-shot test, every word in the tokenizer's vocabulary (it refuses any other):
# "page", the prompts of the page (their other words occur in no training caption); "new_position", only
# trained words, the name at a token index no training template of either language gives it; "name_only",
# the name and nothing else; "composed", trained words in a combination no template makes.
CONTROLS = {
    "page": captions.PROMPTS,
    "new_position": {"en": "the digit : {name}", "zh": "数字是{name}"},
    "name_only": {"en": "{name}", "zh": "{name}"},
    "composed": {"en": "the {parity} digit {name}", "zh": "数字{name}是{parity}"},
}
# no name at all: parity and shape only, which sort the digits into 4 classes, not 10
ATTRIBUTE_PROMPTS = {"en": "{parity} and {shape}", "zh": "{parity}，{shape}"}
# --8<-- [end:controls]


def attribute_class(digit: int) -> int:
    """The class of ``digit`` among the 4 (parity, shape) pairs, in the order of ``attribute_prompts``."""
    return 2 * (digit % 2) + (digit in captions.ROUND_DIGITS)


def attribute_prompts(lang: str) -> list[str]:
    """One prompt per (parity, shape) class, even-open first: no digit name in them."""
    return [
        ATTRIBUTE_PROMPTS[lang].format(parity=captions.PARITY[lang][parity], shape=captions.SHAPE[lang][shape]) for parity in range(2) for shape in range(2)
    ]


def control_prompts(template: str, lang: str) -> list[str]:
    """The 10 prompts ``template`` makes in ``lang``, digit 0 first."""
    return [captions.caption(digit, lang, template) for digit in range(10)]


def name_positions(template: str, lang: str) -> list[int]:
    """The token indices at which ``template`` puts the digit's name (each name is one token), over the 10 digits."""
    return sorted({captions.words(captions.caption(d, lang, template)).index(captions.NAMES[lang][d]) for d in range(10)})


def training_words(lang: str) -> set[str]:
    """Every token some training caption of ``lang`` holds."""
    return {word for digit in range(10) for text in captions.training_captions(digit, lang) for word in captions.words(text)}


@result("clip-controls")
def controls() -> dict:
    """The chapter's CLIP run (no new training) on the control prompt sets, in both languages, on the test digits."""
    model = run().model
    test = digits_splits().test
    images = clip.image_features(model, test.x)  # (n, E)
    table: dict = {}
    for lang in captions.LANGUAGES:
        trained = training_words(lang)
        places = sorted({i + 1 for t in captions.TEMPLATES[lang] for i in name_positions(t, lang)})  # counted from 1
        table[lang] = {
            "training_name_places": places,
            "training_name_places_text": ", ".join(map(str, places)),
            "wordings": len(captions.TEMPLATES[lang]) * 10,  # distinct training captions: a retrieval query repeats one of these
        }
        for name, templates in CONTROLS.items():
            prompts = control_prompts(templates[lang], lang)
            similarity = images @ clip.text_features(model, prompts).T  # (n, 10)
            table[lang][name] = {
                "template": templates[lang],
                "accuracy": (similarity.argmax(dim=1) == test.y).float().mean().item(),
                "name_place": name_positions(templates[lang], lang)[0] + 1,  # the name's token, counted from 1 (one place per template here)
                "untrained_words": sorted({w for p in prompts for w in captions.words(p)} - trained),
            }
        similarity = images @ clip.text_features(model, attribute_prompts(lang)).T  # (n, 4)
        truth = torch.tensor([attribute_class(d) for d in test.y.tolist()])
        table[lang]["attributes"] = {"template": ATTRIBUTE_PROMPTS[lang], "accuracy": (similarity.argmax(dim=1) == truth).float().mean().item()}
    truth = torch.tensor([attribute_class(d) for d in test.y.tolist()])
    table["attributes_majority"] = torch.bincount(truth, minlength=4).max().item() / len(truth)  # always answering the commonest class
    accuracies = [table[lang][name]["accuracy"] for lang in captions.LANGUAGES for name in CONTROLS]
    table["lowest"], table["highest"] = min(accuracies), max(accuracies)
    return table


def _one_per_digit() -> tuple[torch.Tensor, torch.Tensor]:
    """The first test image of each digit 0..9, (10, 64), and the labels."""
    test = digits_splits().test
    index = torch.stack([torch.nonzero(test.y == digit)[0, 0] for digit in range(10)])
    return test.x[index], test.y[index]


@figure("clip/similarity")
def similarity_figure(lang: str):
    """Cosine similarity between ten test images (one per digit) and the ten zero-shot prompts."""
    model = run().model
    x, y = _one_per_digit()
    images = clip.image_features(model, x)  # (10, E), unit length
    prompts = clip.text_features(model, captions.prompts(lang))  # (10, E)
    similarity = (images @ prompts.T).numpy()
    fig, ax = plt.subplots(figsize=(6.6, 5.4))
    shown = ax.imshow(similarity, cmap="viridis")
    ax.set_xticks(range(10), captions.prompts(lang), rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(10), [str(digit.item()) for digit in y])
    ax.set_ylabel(tr(lang, "测试图像（真实数字）", "test image (true digit)"))
    for i in range(10):
        ax.add_patch(plt.Rectangle((similarity[i].argmax() - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="white", lw=1.5))
    fig.colorbar(shown, ax=ax, label=tr(lang, "余弦相似度（白框：最相似的提示词）", "cosine similarity (white box: the closest prompt)"))
    fig.tight_layout()
    return fig


@figure("clip/embeddings")
def embeddings_figure(lang: str):
    """Image embeddings of the test digits and the prompts' text embeddings, projected on their first two principal axes."""
    model = run().model
    test = digits_splits().test
    images = clip.image_features(model, test.x)  # (N, E)
    prompts = clip.text_features(model, captions.prompts(lang))  # (10, E)
    both = torch.cat([images, prompts])
    centred = both - both.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    plane = (centred @ v[:2].T).numpy()  # (N + 10, 2)
    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    colors = plt.get_cmap("tab10")
    for digit in range(10):
        mask = (test.y == digit).numpy()
        ax.scatter(plane[: len(images)][mask, 0], plane[: len(images)][mask, 1], s=8, color=colors(digit), alpha=0.6)
        ax.scatter(*plane[len(images) + digit], s=160, marker="*", color=colors(digit), edgecolors="black", linewidths=0.8, zorder=3)
        ax.annotate(captions.prompts(lang)[digit], plane[len(images) + digit], textcoords="offset points", xytext=(6, 4), fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(tr(lang, "点：测试图像的嵌入；星：提示词的嵌入（前两个主成分）", "dots: test images; stars: prompts (first two principal axes)"), fontsize=9)
    fig.tight_layout()
    return fig


@figure("clip/temperature")
def temperature_figure(lang: str):
    """The learned temperature and the training loss over the epochs."""
    history = run().result.history
    table = compute_result("clip-scores")
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.4))
    left.plot(epochs, [h["temperature"] for h in history], color=PALETTE[0])
    left.set_xlabel(tr(lang, "轮次", "epoch"))
    left.set_ylabel(tr(lang, "温度 τ（每轮的平均）", "temperature τ (mean over the epoch)"))
    left.set_title(
        tr(
            lang,
            f"从 {table['temperature']['start']:.3f} 到 {table['temperature']['end']:.3f}",
            f"from {table['temperature']['start']:.3f} to {table['temperature']['end']:.3f}",
        ),
        fontsize=9,
    )
    right.plot(epochs, [h["loss"] for h in history], color=PALETTE[1])
    right.axhline(table["loss_floor"], color="gray", ls=":", lw=1)
    right.text(
        epochs[len(epochs) // 2],
        table["loss_floor"] - 0.05,
        tr(lang, f"下限 E[ln K]：约 {table['loss_floor']:.2f}", f"floor E[ln K]: about {table['loss_floor']:.2f}"),
        ha="center",
        va="top",
        fontsize=8,
        color="gray",
    )
    right.set_ylim(table["loss_floor"] - 0.4, None)
    right.set_xlabel(tr(lang, "轮次", "epoch"))
    right.set_ylabel(tr(lang, "对称 InfoNCE 损失", "symmetric InfoNCE loss"))
    fig.tight_layout()
    return fig
