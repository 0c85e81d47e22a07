"""Figures and numbers of the ViT chapter.

Every classifier trains on the digits protocol's split (the first N of the
1000 training digits; validation 350, test 447) with one budget: AdamW,
batches of 64, at most 100 epochs with a cosine decay, early stopping on the
validation error (patience 40), each architecture at its own learning rate
(``train_defaults`` of ``recipes/vit.py`` and ``recipes/cnn.py``). Every
setting is trained with several seeds; the logistic regression (the judge of
the generation chapters) is the linear baseline.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import pyplot as plt
from matplotlib.patches import Rectangle

from unimodel.data import DIGIT_LEVELS, DIGIT_SIDE, digits_splits
from unimodel.figures.registry import budget, compute_result, exported, figure, result, trains
from unimodel.figures.style import PALETTE, tr
from unimodel.models.vit import patchify
from unimodel.recipes import model_spec
from unimodel.recipes.classifier import accuracy
from unimodel.runs import Run, RunSpec
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig
from unimodel.website.exports import Export

SIZES = budget(full=(100, 300, 1000), quick=(100, 1000))  # training digits used, out of the 1000
SEEDS = budget(full=(0, 1, 2), quick=(0,))
EPOCHS = budget(full=100, quick=3)
MODELS = {  # name on the page -> (model, config)
    "cnn": ("cnn", {}),
    "vit-4": ("vit", {"patch": 4}),
    "vit-2": ("vit", {"patch": 2}),
}
SHOWN = 6  # test digits in the attention figure


BAG_OF_PATCHES = {**MODELS["vit-2"][1], "positions": False}  # the ablation: the same ViT without position embeddings
FIXED_POSITIONS = {**MODELS["vit-2"][1], "learn_positions": False}  # the control: its random initial position embeddings, never trained


def spec(model: str, config: dict, seed: int = 0, size: int = 1000) -> RunSpec:
    """``model`` with ``config`` on the first ``size`` training digits."""
    defaults = model_spec(model).train_defaults("digits")
    settings = TrainConfig(**{**defaults, "epochs": EPOCHS, "seed": seed, "device": "cpu"})
    return RunSpec(model, config, settings, train_size=size)


def run(name: str, seed: int = 0, size: int = 1000) -> Run:
    return spec(*MODELS[name], seed, size).load()


@trains
def runs() -> list[RunSpec]:
    sizes = [spec(*MODELS[name], seed, size) for name in MODELS for size in SIZES for seed in SEEDS]
    return sizes + [spec("vit", config, seed) for config in (BAG_OF_PATCHES, FIXED_POSITIONS) for seed in SEEDS]


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Test accuracy of a logistic regression fitted to fixed features (pixels in [0, 1], or a frozen encoder's output)."""
    from sklearn.linear_model import LogisticRegression

    return float(LogisticRegression(max_iter=2000).fit(train_x, train_y).score(test_x, test_y))


def _logistic_accuracy(size: int) -> float:
    """The linear baseline: logistic regression on the pixels of the first ``size`` training digits, scored on the test digits."""
    splits = digits_splits()
    train, test = splits.train, splits.test
    return linear_probe(train.x[:size].numpy() / (DIGIT_LEVELS - 1), train.y[:size].numpy(), test.x.numpy() / (DIGIT_LEVELS - 1), test.y.numpy())


@result("vit-accuracy")
def accuracy_table() -> dict:
    """Test accuracy of each classifier for each training-set size (mean, and every seed), its size and training time."""
    test = digits_splits().test
    table: dict = {"sizes": list(SIZES), "seeds": list(SEEDS), "seed_count": len(SEEDS), "epochs": EPOCHS, "models": {}}
    for name in MODELS:
        per_size = {}
        for size in SIZES:
            runs = [run(name, seed, size) for seed in SEEDS]
            values = [accuracy(r.model, test.x, test.y) for r in runs]
            per_size[str(size)] = {
                "mean": float(np.mean(values)),
                "values": values,
                "seconds": float(np.mean([r.result.seconds for r in runs])),
                "epochs": float(np.mean([len(r.result.history) for r in runs])),
            }
        model = run(name).model
        table["models"][name] = {
            "accuracy": per_size,
            "parameters": sum(p.numel() for p in model.parameters()),
            "tokens": model.config.patches + 1 if name.startswith("vit") else None,
        }
    logistic = {str(size): _logistic_accuracy(size) for size in SIZES}
    table["models"]["logistic"] = {"accuracy": {size: {"mean": value, "values": [value]} for size, value in logistic.items()}, "parameters": 65 * 10}
    full, small = str(SIZES[-1]), str(SIZES[0])
    table["full"] = {name: entry["accuracy"][full]["mean"] for name, entry in table["models"].items()}
    table["small"] = {name: entry["accuracy"][small]["mean"] for name, entry in table["models"].items()}
    table["spread"] = {name: max(entry["accuracy"][full]["values"]) - min(entry["accuracy"][full]["values"]) for name, entry in table["models"].items()}
    return table


def _grid_similarity(similarity) -> tuple[float, float]:
    """Mean cosine similarity of the position embeddings of neighbouring patches (up, down, left, right) and of all other pairs."""
    side = DIGIT_SIDE // MODELS["vit-2"][1]["patch"]
    cells = [divmod(i, side) for i in range(side * side)]
    neighbours, others = [], []
    for i, (r1, c1) in enumerate(cells):
        for j, (r2, c2) in enumerate(cells):
            if i != j:
                (neighbours if abs(r1 - r2) + abs(c1 - c2) == 1 else others).append(similarity[i, j].item())
    return float(np.mean(neighbours)), float(np.mean(others))


def _initial_model(name: str, seed: int):
    """The model of run ``name`` before its first step: the same seed gives the same initial weights (``train_run``)."""
    model, config = MODELS[name]
    spec_ = model_spec(model)
    set_seed(seed)
    return spec_.model_cls(spec_.config_cls(**config))


@result("vit-positions")
def positions_table() -> dict:
    """Do the position embeddings matter (the ViT trained without them), and do they encode the grid? 2x2 patches, all 1000 digits.

    The controls: the same ViT with its random initial position embeddings kept fixed through training; the same
    statistics of the random embeddings the run started from, and how far training moved each embedding (the cosine
    similarity of each position's embedding before and after training, and how many times longer it grew).
    """
    test = digits_splits().test
    table: dict = {"seed_count": len(SEEDS), "seeds": {}}
    for seed in SEEDS:
        model = run("vit-2", seed).model
        initial = _initial_model("vit-2", seed)
        neighbours, others = _grid_similarity(model.position_similarity())
        initial_neighbours, initial_others = _grid_similarity(initial.position_similarity())
        moved = torch.nn.functional.cosine_similarity(model.position.detach()[0, 1:], initial.position.detach()[0, 1:], dim=-1)  # per patch position
        grown = model.position.detach()[0, 1:].norm(dim=-1) / initial.position.detach()[0, 1:].norm(dim=-1)  # per patch position
        with torch.no_grad():  # at the start: how long an embedded test patch is next to a position embedding
            patches = initial.embed(patchify(test.x.float() / (DIGIT_LEVELS - 1), initial.config.patch))
        patch_over_position = patches.norm(dim=-1).mean() / initial.position.detach()[0, 1:].norm(dim=-1).mean()
        bag = spec("vit", BAG_OF_PATCHES, seed).load().model
        fixed = spec("vit", FIXED_POSITIONS, seed).load().model
        table["seeds"][str(seed)] = {
            "accuracy": accuracy(model, test.x, test.y),
            "bag_accuracy": accuracy(bag, test.x, test.y),
            "fixed_accuracy": accuracy(fixed, test.x, test.y),
            "neighbour_similarity": neighbours,
            "other_similarity": others,
            "initial_neighbour_similarity": initial_neighbours,
            "initial_other_similarity": initial_others,
            "kept_direction": float(moved.mean()),
            "length_ratio": float(grown.mean()),
            "initial_patch_over_position": float(patch_over_position),
        }
    for key in next(iter(table["seeds"].values())):
        table[key] = float(np.mean([entry[key] for entry in table["seeds"].values()]))
    return table


RANDOM_SPLITS = 20


@result("vit-split")
def split_table() -> dict:
    """Is the protocol's test split harder than a random one? The linear baseline on it, and on random splits of the same sizes.

    The 1797 digits have no writer labels (scikit-learn's copy of UCI's test set, by 13 writers), so the split's
    difficulty is measured, not explained: logistic regression on the pixels, trained on 1000 digits, scored on 447.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.data / (DIGIT_LEVELS - 1), digits.target
    order = np.arange(len(y))
    train_end, val_end = len(digits_splits().train), len(digits_splits().train) + len(digits_splits().val)

    def test_accuracy(order: np.ndarray) -> float:
        return linear_probe(x[order[:train_end]], y[order[:train_end]], x[order[val_end:]], y[order[val_end:]])

    shuffled = [test_accuracy(np.random.default_rng(seed).permutation(len(y))) for seed in range(RANDOM_SPLITS)]
    return {
        "protocol_validation": linear_probe(x[:train_end], y[:train_end], x[train_end:val_end], y[train_end:val_end]),
        "protocol_test": test_accuracy(order),
        "random_splits": RANDOM_SPLITS,
        "random_test_mean": float(np.mean(shuffled)),
        "random_test_lowest": float(np.min(shuffled)),
        "random_test_highest": float(np.max(shuffled)),
    }


def _label(name: str, lang: str) -> str:
    return {
        "logistic": tr(lang, "逻辑回归", "logistic regression"),
        "cnn": tr(lang, "小 CNN", "small CNN"),
        "vit-4": tr(lang, "ViT，4×4 patch", "ViT, 4×4 patches"),
        "vit-2": tr(lang, "ViT，2×2 patch", "ViT, 2×2 patches"),
    }[name]


@figure("vit/patches")
def patches_figure(lang: str):
    """A test digit cut into 2x2 and 4x4 patches, and the token sequence each gives."""
    image = digits_splits().test.x[0].float() / (DIGIT_LEVELS - 1)  # (64,)
    fig, axes = plt.subplots(2, 2, figsize=(9, 4.6), gridspec_kw={"width_ratios": [1, 3.2]})
    for row, patch in enumerate((2, 4)):
        left, right = axes[row]
        left.imshow(1 - image.reshape(DIGIT_SIDE, DIGIT_SIDE), cmap="gray", vmin=0, vmax=1)
        for k in range(0, DIGIT_SIDE + 1, patch):
            left.axhline(k - 0.5, color=PALETTE[3], lw=1.2)
            left.axvline(k - 0.5, color=PALETTE[3], lw=1.2)
        left.set_axis_off()
        left.set_title(tr(lang, f"{patch}×{patch} 的 patch", f"{patch}×{patch} patches"), fontsize=9)
        tokens = patchify(image[None], patch)[0]  # (N, p * p)
        n = len(tokens)
        right.add_patch(Rectangle((0, 0), 0.9, 0.9, color=PALETTE[0], alpha=0.5))
        right.text(0.45, 0.45, "[CLS]", ha="center", va="center", fontsize=7, color="white")
        for i, token in enumerate(tokens):
            right.imshow(1 - token.reshape(patch, patch), cmap="gray", vmin=0, vmax=1, extent=(i + 1, i + 1.9, 0, 0.9))
            right.text(i + 1.45, -0.25, str(i + 1), ha="center", fontsize=6)
        right.set_xlim(-0.1, n + 1)
        right.set_ylim(-0.5, 1)
        right.set_aspect("equal")
        right.set_axis_off()
        right.set_title(
            tr(lang, f"{n} 个 patch 排成序列，前面加上 [CLS]：{n + 1} 个 token", f"{n} patches in a row, [CLS] in front: {n + 1} tokens"), fontsize=9
        )
    fig.tight_layout()
    return fig


def _read(vit, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The class probabilities (1, K), and [CLS]'s attention on the patches in every block, averaged over the heads (depth, N)."""
    cls = torch.cat([weights[:, :, 0, 1:].mean(1) for weights in vit.encode(x)[1]])  # depth x (1, N) -> (depth, N)
    return vit.logits(x).softmax(-1), cls


@exported("vit/vit-2")
def vit_reader() -> Export:
    """The 2x2-patch ViT for the page's widget: a digit the reader draws (pixel levels 0..16) -> probabilities and [CLS]'s attention."""
    test = digits_splits().test
    examples = {"images": test.x[:SHOWN].tolist(), "labels": test.y[:SHOWN].tolist(), "levels": DIGIT_LEVELS}
    return Export(run("vit-2").model, _read, {"x": test.x[:1].float()}, ("probabilities", "attention"), examples)


@figure("vit/attention")
def attention_figure(lang: str):
    """Where [CLS] looks, block by block (mean over heads), for a few test digits: the 2x2-patch ViT."""
    model = run("vit-2").model
    test = digits_splits().test
    x = test.x[:SHOWN]
    maps = model.attention_maps(x)  # depth x (B, h, T, T)
    side = DIGIT_SIDE // model.config.patch
    fig, axes = plt.subplots(len(maps) + 1, SHOWN, figsize=(1.3 * SHOWN, 1.35 * (len(maps) + 1)))
    predicted = model.logits(x).argmax(1)
    for j in range(SHOWN):
        axes[0, j].imshow(1 - x[j].reshape(DIGIT_SIDE, DIGIT_SIDE).float() / (DIGIT_LEVELS - 1), cmap="gray", vmin=0, vmax=1)
        truth, guess = test.y[j].item(), predicted[j].item()
        axes[0, j].set_title(tr(lang, f"真实 {truth}，预测 {guess}", f"true {truth}, predicted {guess}"), fontsize=8)
        for layer, weights in enumerate(maps):
            cls = weights[j, :, 0, 1:].mean(0).reshape(side, side)  # [CLS]'s weights on the patches, averaged over heads
            axes[layer + 1, j].imshow(cls.numpy(), cmap="viridis")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)
    for layer in range(len(maps)):
        axes[layer + 1, 0].set_ylabel(tr(lang, f"第 {layer + 1} 块", f"block {layer + 1}"), fontsize=8)
    fig.tight_layout()
    return fig


@figure("vit/positions")
def positions_figure(lang: str):
    """Cosine similarity of each patch's learned position embedding with every other's: the 2x2-patch ViT."""
    similarity = run("vit-2").model.position_similarity()  # (N, N)
    side = DIGIT_SIDE // 2
    fig, axes = plt.subplots(side, side, figsize=(5.2, 5.2))
    for i, ax in enumerate(axes.flat):
        image = ax.imshow(similarity[i].reshape(side, side).numpy(), cmap="viridis", vmin=-1, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)
        row, col = divmod(i, side)
        if col == 0:
            ax.set_ylabel(str(row + 1), fontsize=8)
        if row == side - 1:
            ax.set_xlabel(str(col + 1), fontsize=8)
    fig.supxlabel(tr(lang, "patch 所在的列", "column of the patch"), fontsize=9)
    fig.supylabel(tr(lang, "patch 所在的行", "row of the patch"), fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.6, label=tr(lang, "位置编码的余弦相似度", "cosine similarity of position embeddings"))
    return fig


@figure("vit/data-efficiency")
def data_efficiency_figure(lang: str):
    """Test accuracy against the number of training digits: mean over the seeds, and each seed."""
    table = compute_result("vit-accuracy")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for color, name in zip(PALETTE, ("logistic", "cnn", "vit-4", "vit-2")):
        entry = table["models"][name]["accuracy"]
        sizes = table["sizes"]  # the cache stores the entries sorted as strings
        ax.plot(sizes, [100 * entry[str(size)]["mean"] for size in sizes], marker="o", color=color, label=_label(name, lang))
        for size in sizes:
            values = entry[str(size)]["values"]
            ax.scatter([size] * len(values), [100 * v for v in values], s=10, color=color, alpha=0.5)
    ax.set_xscale("log")
    ax.set_xticks(table["sizes"], [str(size) for size in table["sizes"]])
    ax.set_xlabel(tr(lang, "训练用的数字（张，对数轴）", "training digits used (log scale)"))
    ax.set_ylabel(tr(lang, "测试集准确率（%）", "test accuracy (%)"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
