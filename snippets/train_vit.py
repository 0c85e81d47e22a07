"""Train a tiny ViT on scikit-learn's 8x8 digits, print its test accuracy and draw where [CLS] looks.

Runs as it stands once the package is installed (`pip install -e .` in the
repository): about half a minute on a laptop CPU.

    python snippets/train_vit.py --patch 4 --out vit-attention.png
"""
# quick: --epochs 2 --out quick.png

import argparse

from matplotlib import pyplot as plt

from unimodel.data import DIGIT_LEVELS, DIGIT_SIDE, digits_splits
from unimodel.models.vit import ViT, ViTConfig
from unimodel.recipes.classifier import accuracy
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--patch", type=int, default=4, choices=[1, 2, 4, 8], help="side of a square patch in pixels")
parser.add_argument("--epochs", type=int, default=100, help="upper bound on epochs (early stopping may end sooner)")
parser.add_argument("--out", default="vit-attention.png", help="where to save the attention of [CLS] on 6 test digits")
args = parser.parse_args()

splits = digits_splits()  # train [:1000], validation [1000:1350], test [1350:]
set_seed(0)  # the same initial weights on every run
model = ViT(ViTConfig(patch=args.patch))  # 4 encoder blocks, 4 heads, tokens of width 64
result = fit(
    model,
    (splits.train.x, splits.train.y),
    TrainConfig(epochs=args.epochs, batch_size=64, optimizer="adamw", lr=5e-4, schedule="cosine", patience=40, seed=0),
    validate=lambda m: 1 - accuracy(m, splits.val.x, splits.val.y),  # early stopping on the validation error
)
print(f"best epoch {result.best_epoch}, {result.seconds:.0f} s of training")
print(f"test accuracy: {accuracy(model, splits.test.x, splits.test.y):.1%}")

x = splits.test.x[:6]
last = model.attention_maps(x)[-1]  # the last block's weights, (6, heads, T, T); token 0 is [CLS]
side = DIGIT_SIDE // args.patch
fig, axes = plt.subplots(2, 6, figsize=(9, 3.2))
for j in range(6):
    axes[0, j].imshow(1 - x[j].reshape(DIGIT_SIDE, DIGIT_SIDE) / (DIGIT_LEVELS - 1), cmap="gray")
    axes[1, j].imshow(last[j, :, 0, 1:].mean(0).reshape(side, side))  # [CLS] on the patches, mean over heads
for ax in axes.flat:
    ax.set_axis_off()
fig.savefig(args.out, bbox_inches="tight")
print(f"attention saved to {args.out}")
