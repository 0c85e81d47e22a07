"""Figures and numbers of the VQ-VAE section of the VAE chapter.

The tokenizer trains on the 1000 training digits (``train_defaults`` of
``models/vqvae.py``: Adam lr 2e-3, batch 64, at most 100 epochs, early
stopping on the validation reconstruction NLL with patience 20, seed 0).
It is the same run, with the same settings and seed, as the tokenizer
trained inside the unified model of ``models/unified.py``. A second run
switches the dead-code restart off, to show what it is for.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import pyplot as plt

from unimodel.data import DIGIT_LEVELS, digits_splits
from unimodel.figures.registry import budget, compute_result, figure, result, trains
from unimodel.figures.style import PALETTE, show_images, tr
from unimodel.models import vqvae
from unimodel.runs import Run, RunSpec
from unimodel.training import TrainConfig

SEED = 0
DEFAULTS = vqvae.train_defaults("digits")
TRAIN = TrainConfig(**{**DEFAULTS, "epochs": budget(full=DEFAULTS["epochs"], quick=2), "seed": SEED, "device": "cpu"})
RUNS = {"tokenizer": {}, "no-restart": {"restart_after": 0.0}}
SHOWN = 10  # test digits in the reconstruction figure


def spec(name: str = "tokenizer") -> RunSpec:
    return RunSpec("vqvae", RUNS[name], TRAIN)


def run(name: str = "tokenizer") -> Run:
    return spec(name).load()


@trains
def runs() -> list[RunSpec]:
    return [spec(name) for name in RUNS]


@result("vqvae-scores")
def scores() -> dict:
    """Test scores of the tokenizer and of the same model without dead-code restarts, with their training time."""
    splits = digits_splits()
    table = {}
    for name in RUNS:
        r = run(name)
        table[name] = {
            **r.spec.evaluate(r.model, splits),
            "parameters": sum(p.numel() for p in r.model.parameters()),
            "epochs": len(r.result.history),
            "best_epoch": r.result.best_epoch,
            "seconds": r.result.seconds,
        }
    c = run().model.config
    table["config"] = {"codebook_size": c.codebook_size, "grid": c.grid, "codes": c.codes, "code_dim": c.code_dim}
    table["pixel_bits"] = 64 * float(np.log2(DIGIT_LEVELS))  # an image stored pixel by pixel: 64 values of 17 levels
    table["compression"] = table["pixel_bits"] / table["tokenizer"]["bits_per_image"]
    return table


@figure("vqvae/reconstructions")
def reconstructions(lang: str):
    """Test digits, their 4x4 grid of codes written out, and the digits the decoder rebuilds from those codes."""
    model = run().model
    test = digits_splits().test
    x = torch.stack([test.x[test.y == d][0] for d in range(SHOWN)])  # the first test image of each digit
    codes = model.encode(x)  # (10, 16)
    rebuilt = vqvae.reconstruct(model, x).numpy()
    G = model.config.grid
    fig, axes = plt.subplots(3, SHOWN, figsize=(SHOWN * 0.95, 3.4))
    for i in range(SHOWN):
        show_images(axes[0, i], x[i : i + 1].numpy() / (DIGIT_LEVELS - 1), rows=1)
        grid = codes[i].reshape(G, G).numpy()
        ax = axes[1, i]
        ax.imshow(np.zeros((G, G)), cmap="Greys", vmin=0, vmax=1)
        for r in range(G):
            for col in range(G):
                ax.text(col, r, str(grid[r, col]), ha="center", va="center", fontsize=6.5, color=PALETTE[0])
        ax.set_xticks(np.arange(-0.5, G), minor=True)
        ax.set_yticks(np.arange(-0.5, G), minor=True)
        ax.grid(which="minor", color="#bbbbbb", linewidth=0.5)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        show_images(axes[2, i], rebuilt[i : i + 1], rows=1)
    for ax, label in zip(axes[:, 0], (tr(lang, "原图", "image"), tr(lang, "码字", "codes"), tr(lang, "重建", "rebuilt"))):
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(label, fontsize=9)
    fig.tight_layout()
    return fig


@figure("vqvae/codebook")
def codebook(lang: str):
    """What each code draws: the decoder's image of a grid filled with that one code, and how often test digits use it."""
    model = run().model
    K, N = model.config.codebook_size, model.config.codes
    tiles = model.decode(torch.arange(K)[:, None].repeat(1, N)).numpy()  # (K, 64)
    counts = {name: torch.bincount(run(name).model.encode(digits_splits().test.x).flatten(), minlength=K).numpy() for name in RUNS}
    fig = plt.figure(figsize=(9, 3.3))
    left = fig.add_axes([0.0, 0.05, 0.42, 0.85])
    show_images(left, tiles, rows=4, title=tr(lang, "每个码字单独铺满 4×4 网格时解码出的图", "each code alone, filling the 4x4 grid, decoded"))
    right = fig.add_axes([0.5, 0.18, 0.48, 0.68])
    measured = compute_result("vqvae-scores")
    for offset, (name, color) in zip((-0.2, 0.2), (("tokenizer", PALETTE[0]), ("no-restart", PALETTE[3]))):
        label = tr(
            lang,
            f"{'重启死码字' if name == 'tokenizer' else '不重启'}：用到 {measured[name]['codes_used']} 个",
            f"{'restarting dead codes' if name == 'tokenizer' else 'no restarts'}: {measured[name]['codes_used']} used",
        )
        right.bar(np.arange(K) + offset, np.sort(counts[name])[::-1], width=0.4, color=color, label=label)
    right.set_xlabel(tr(lang, "码字（按使用次数排序）", "codes, most used first"))
    right.set_ylabel(tr(lang, "测试集中出现的次数", "uses in the test digits"))
    right.legend(fontsize=8, frameon=False)
    return fig
