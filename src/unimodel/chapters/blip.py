"""Figures and numbers of the BLIP chapter.

The tiny BLIP (a 4x4-patch ViT and a two-block MED text Transformer) trains
on the 1000 training digits with captions drawn from the CLIP chapter's
templates in both languages (``train_defaults`` of ``recipes/blip.py``, seed
0). The ablation trains the same model with some of its three losses
switched off, or with random instead of hard ITM negatives, under the same
budget. Everything is scored on the 447 test digits.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from matplotlib import pyplot as plt

from unimodel.data import DIGIT_LEVELS, DIGIT_SIDE
from unimodel.experiments import capfilt
from unimodel.figures.registry import budget, figure, result, scored_splits, trains
from unimodel.figures.style import PALETTE, tr
from unimodel.models import blip
from unimodel.recipes import blip as blip_recipe
from unimodel.runs import Run, RunSpec
from unimodel.training import TrainConfig

SEED = 0
DEFAULTS = blip_recipe.train_defaults("digits")
TRAIN = TrainConfig(**{**DEFAULTS, "epochs": budget(full=DEFAULTS["epochs"], quick=2), "seed": SEED, "device": "cpu"})
VARIANTS = {  # name on the page -> the config's switches; "blip" is the model of the chapter
    "itc": {"itm": False, "lm": False},
    "itc-itm": {"lm": False},
    "itc-lm": {"itm": False},
    "blip": {},
    "random-negatives": {"hard_negatives": False},
    "lm": {"itc": False, "itm": False},
}
SEEDS = budget(full=(0, 1, 2), quick=(0,))  # the ablation's seeds; the figures show seed 0
SHOWN = 6  # images per row of the captions figure
ATTENDED = 4  # test images in the cross-attention figure


def spec(variant: str = "blip", seed: int = SEED) -> RunSpec:
    return RunSpec("blip", VARIANTS[variant], replace(TRAIN, seed=seed))


def run(variant: str = "blip", seed: int = SEED) -> Run:
    return spec(variant, seed).load()


@trains
def runs() -> list[RunSpec]:
    return [spec(variant, seed) for variant in VARIANTS for seed in SEEDS]


@result("blip-ablation")
def ablation() -> dict:
    """Test scores of every variant: the mean over the seeds and the lowest and highest seed (None where the variant lacks the head), and its training time.

    Zero-shot accuracy is kept per language (the two prompts behave
    differently); ITM accuracy on hard pairs and caption exact match are the
    means of the two languages.
    """
    splits = scored_splits()
    table: dict = {"seeds": list(SEEDS), "seed_count": len(SEEDS), "variants": {}}
    for variant in VARIANTS:
        rows = []
        for seed in SEEDS:
            r = run(variant, seed)
            scores = blip_recipe.evaluate(r.model, splits, seed=SEED)
            rows.append(
                {
                    "zero_shot_en": scores.get("zero_shot_en"),
                    "zero_shot_zh": scores.get("zero_shot_zh"),
                    "itm_hard": blip_recipe.mean_over_languages(scores, "itm_hard"),
                    "caption_exact": blip_recipe.mean_over_languages(scores, "caption_exact"),
                    "seconds": r.result.seconds,
                }
            )
        table["variants"][variant] = {name: _mean_of_seeds([row[name] for row in rows]) for name in rows[0]}
        for bound, pick in (("lowest", min), ("highest", max)):  # the seed spread of every score
            table["variants"][variant][bound] = {name: None if rows[0][name] is None else pick(row[name] for row in rows) for name in rows[0]}
        table["variants"][variant]["values"] = rows
    return table


def _mean_of_seeds(values: list) -> float | None:
    return None if values[0] is None else float(np.mean(values))


@result("blip-scores")
def scores() -> dict:
    """The full model's test scores in each language, its training time and its size."""
    r = run()
    splits = scored_splits()
    table = blip_recipe.evaluate(r.model, splits, seed=SEED)
    table.update({"epochs": len(r.result.history), "best_epoch": r.result.best_epoch, "seconds": r.result.seconds})
    table["parameters"] = sum(p.numel() for p in r.model.parameters())
    return table


@result("blip-capfilt", runs=lambda: [spec()])  # it trains its own models: it need not wait for the ablation's runs
def capfilt_experiment() -> dict:
    """CapFilt on a noisy copy of the training captions: the filter's record and the test scores before and after (``unimodel.experiments.capfilt``)."""
    splits = scored_splits()
    table = capfilt.run(splits, TRAIN, capfilt.CapFiltConfig(finetune_epochs=budget(full=20, quick=1), seed=SEED))
    table["scores"]["all_clean"] = capfilt.scores(run().model, splits)  # the chapter's model: every training caption right
    return table


def _captioned(lang: str) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
    """The test images, their labels and their greedy captions in ``lang``."""
    test = scored_splits().test
    captions, _ = blip.generate(run().model, test.x, lang)
    return test.x, test.y, captions


@figure("blip/captions")
def captions_figure(lang: str):
    """Greedy captions of the first test images (top row) and of the first ones it gets wrong (bottom row)."""
    x, y, captions = _captioned(lang)
    right = [blip_recipe.is_caption_of(c, d, lang) for c, d in zip(captions, y.tolist())]
    rows = [list(range(SHOWN)), [i for i, ok in enumerate(right) if not ok][:SHOWN]]
    fig, axes = plt.subplots(2, SHOWN, figsize=(1.9 * SHOWN, 4.6))
    for row, indices in zip(axes, rows):
        for ax in row:
            ax.axis("off")
        for ax, i in zip(row, indices):
            ax.imshow(x[i].reshape(DIGIT_SIDE, DIGIT_SIDE).numpy(), cmap="gray_r", vmin=0, vmax=DIGIT_LEVELS - 1)
            ax.set_title(blip.caption_text(captions[i], lang), fontsize=8, color=PALETTE[2] if right[i] else PALETTE[3], wrap=True)
            ax.text(0.5, -0.08, tr(lang, f"真实：{y[i].item()}", f"true: {y[i].item()}"), transform=ax.transAxes, ha="center", va="top", fontsize=8)
    axes[0][0].text(-0.25, 0.5, tr(lang, "前几张", "first"), transform=axes[0][0].transAxes, rotation=90, va="center", ha="right", fontsize=9)
    axes[1][0].text(-0.25, 0.5, tr(lang, "写错的", "wrong"), transform=axes[1][0].transAxes, rotation=90, va="center", ha="right", fontsize=9)
    fig.tight_layout()
    return fig


@figure("blip/cross-attention")
def cross_attention_figure(lang: str):
    """For a few test images, the decoder's last-block cross-attention (mean of the heads) from each generated token to the image's patches.

    The image (patch boundaries drawn) comes first; then, for each token the
    decoder wrote, the weights on the patches laid out as in the image, and
    the weight on the image's [CLS] above.
    """
    model = run().model
    test = scored_splits().test
    x = test.x[:ATTENDED]
    captions, maps = blip.generate(model, x, lang)
    weights = maps[-1].mean(dim=1)  # (B, T, N + 1), the heads averaged
    rows = model.config.vit_config().side // model.config.patch  # patches per side
    steps = max(len(c) for c in captions) + 1  # every token and the [EOS] it ends with
    vmax = max(weights[b, 1 : len(c) + 2, 1:].max().item() for b, c in enumerate(captions))  # one colour scale for every panel shown
    fig, axes = plt.subplots(ATTENDED, steps + 1, figsize=(1.45 * (steps + 1), 1.6 * ATTENDED))
    for b in range(ATTENDED):
        image = x[b].reshape(DIGIT_SIDE, DIGIT_SIDE).numpy()
        axes[b, 0].imshow(image, cmap="gray_r", vmin=0, vmax=DIGIT_LEVELS - 1)
        for edge in range(1, rows):  # the patch boundaries
            axes[b, 0].axhline(edge * DIGIT_SIDE / rows - 0.5, color=PALETTE[0], lw=1)
            axes[b, 0].axvline(edge * DIGIT_SIDE / rows - 0.5, color=PALETTE[0], lw=1)
        axes[b, 0].set_title(tr(lang, f"真实：{test.y[b].item()}", f"true: {test.y[b].item()}"), fontsize=8)
        tokens = [*captions[b], blip.EOS]
        for t in range(steps):
            ax = axes[b, t + 1]
            if t >= len(tokens):
                ax.axis("off")
                continue
            # the decoder's input at place t + 1 ([DEC] [language] come first) is the token that predicts token t + 1;
            # the token written at step t was predicted from place t + 1, so its attention is row t + 1
            row = weights[b, t + 1]
            ax.imshow(row[1:].reshape(rows, rows).numpy(), cmap="magma", vmin=0, vmax=vmax)
            for (i, j), value in np.ndenumerate(row[1:].reshape(rows, rows).numpy()):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < vmax / 2 else "black")
            ax.set_title(f"{tokens[t]}\n[CLS] {row[0]:.2f}", fontsize=8)
        for ax in axes[b]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig


@figure("blip/losses")
def losses_figure(lang: str):
    """The three training losses of the full model and its validation error over the epochs."""
    r = run()
    history = r.result.history
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.4))
    for name, color in zip(("itc", "itm", "lm"), PALETTE):
        left.plot(epochs, [h[name] for h in history], color=color, label=name.upper())
    left.set_yscale("log")
    left.set_xlabel(tr(lang, "轮次", "epoch"))
    left.set_ylabel(tr(lang, "训练损失（每轮的平均）", "training loss (mean over the epoch)"))
    left.legend()
    right.plot(epochs, [h["val"] for h in history], color=PALETTE[3])
    right.axvline(r.result.best_epoch, color="gray", ls=":", lw=1)
    right.set_xlabel(tr(lang, "轮次", "epoch"))
    right.set_ylabel(tr(lang, "验证误差（三项的平均）", "validation error (mean of the three)"))
    fig.tight_layout()
    return fig
