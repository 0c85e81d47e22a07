"""Train a tiny BLIP on scikit-learn's 8x8 digits with bilingual captions, then caption test digits in both languages.

Runs as it stands once the package is installed (`pip install -e .` in the
repository): about two minutes on a laptop CPU.

    python snippets/train_blip.py --out blip-captions.png
"""
# quick: --epochs 2 --out quick.png

import argparse

from matplotlib import pyplot as plt

from unimodel.data import digits_splits
from unimodel.models.blip import BLIP, BLIPConfig, generate
from unimodel.recipes.blip import caption_scores, train_defaults, validation_error
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=60, help="upper bound on epochs (early stopping may end sooner)")
parser.add_argument("--out", default="blip-captions.png", help="where to save eight test digits under their English captions")
args = parser.parse_args()

splits = digits_splits()  # train [:1000], validation [1000:1350], test [1350:]
set_seed(0)  # the same initial weights on every run
model = BLIP(BLIPConfig())  # a 4x4-patch ViT, and one text Transformer trained with ITC, ITM and captioning
settings = {**train_defaults("digits"), "epochs": args.epochs, "seed": 0}
result = fit(model, (splits.train.x, splits.train.y), TrainConfig(**settings), validate=lambda m: validation_error(m, splits))
print(f"best epoch {result.best_epoch}, {result.seconds:.0f} s of training")
for lang in ("en", "zh"):
    scores = caption_scores(model, splits.test.x, splits.test.y, lang)
    print(f"{lang}: {scores['exact']:.1%} of the test captions are a right caption, word for word")

x, y = splits.test.x[:8], splits.test.y[:8]
captions, _ = generate(model, x, "en")  # token lists, greedy
fig, axes = plt.subplots(1, 8, figsize=(16, 2.6))
for ax, image, digit, tokens in zip(axes, x, y, captions):
    ax.imshow(image.reshape(8, 8), cmap="gray_r")
    ax.set_title(" ".join(tokens), fontsize=8)
    ax.set_xlabel(f"true: {digit.item()}")
    ax.set_xticks([])
    ax.set_yticks([])
fig.savefig(args.out, bbox_inches="tight")
print(f"captions saved to {args.out}")
