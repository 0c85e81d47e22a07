"""Train a tiny Chameleon-style unified model on scikit-learn's 8x8 digits: it captions digits and draws them from their names.

Runs as it stands once the package is installed (`pip install -e .` in the
repository): a few minutes on a laptop CPU, first the VQ tokenizer, then the
Transformer.

    python snippets/train_unified.py --out unified-drawings.png
"""
# quick: --epochs 2 --tokenizer-epochs 2 --out quick.png

import argparse

import torch
from matplotlib import pyplot as plt

from unimodel.data import digits_splits
from unimodel.models.unified import Unified, UnifiedConfig, draw
from unimodel.recipes.unified import caption_accuracy, train_defaults, train_tokenizer, validation_error
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=80, help="upper bound on the Transformer's epochs (early stopping may end sooner)")
parser.add_argument("--tokenizer-epochs", type=int, default=100, help="upper bound on the VQ tokenizer's epochs")
parser.add_argument("--out", default="unified-drawings.png", help="where to save the drawings: one row per digit, prompted in Chinese")
args = parser.parse_args()

splits = digits_splits()  # train [:1000], validation [1000:1350], test [1350:]
set_seed(0)  # the same initial weights on every run
model = Unified(UnifiedConfig(tokenizer_epochs=args.tokenizer_epochs))
settings = TrainConfig(**{**train_defaults("digits"), "epochs": args.epochs, "seed": 0})
train_tokenizer(model, splits, settings)  # stage 1: the VQ-VAE that turns a digit into 16 codes
result = fit(model, (splits.train.x, splits.train.y), settings, validate=lambda m: validation_error(m, splits))  # stage 2
print(f"best epoch {result.best_epoch}, {result.seconds:.0f} s of training")
for lang in ("en", "zh"):
    written = caption_accuracy(model, splits.test.x, splits.test.y, lang, "greedy")  # the model writes word by word
    ranked = caption_accuracy(model, splits.test.x, splits.test.y, lang, "ranked")  # log p(caption | image) + log p(image | name)
    print(f"{lang}: test captions exactly right: {written['exact']:.1%} written, {ranked['exact']:.1%} ranked by both directions")

names = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"]
images = draw(model, [name for name in names for _ in range(8)], generator=torch.Generator().manual_seed(0))  # (80, 64) in [0, 1]
fig, axes = plt.subplots(10, 8, figsize=(6, 7.5))
for ax, image in zip(axes.flat, images):
    ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
for ax, name in zip(axes[:, 0], ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]):
    ax.set_ylabel(name, fontsize=8)
fig.savefig(args.out, bbox_inches="tight")
print(f"drawings saved to {args.out}")
