"""Train a tiny CLIP on scikit-learn's 8x8 digits with bilingual captions, then classify test digits zero-shot.

Runs as it stands once the package is installed (`pip install -e .` in the
repository): under a minute on a laptop CPU.

    python snippets/train_clip.py --out clip-similarity.png
"""
# quick: --epochs 2 --out quick.png

import argparse

from matplotlib import pyplot as plt

from unimodel.data import digits_splits
from unimodel.models.captions import prompts
from unimodel.models.clip import CLIP, CLIPConfig, image_features, text_features
from unimodel.recipes.clip import train_defaults, validation_error, zero_shot_accuracy
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=100, help="upper bound on epochs (early stopping may end sooner)")
parser.add_argument("--out", default="clip-similarity.png", help="where to save the similarity of 10 test digits with the Chinese prompts")
args = parser.parse_args()

splits = digits_splits()  # train [:1000], validation [1000:1350], test [1350:]
set_seed(0)  # the same initial weights on every run
model = CLIP(CLIPConfig())  # a 4x4-patch ViT for images, a small Transformer for captions
settings = {**train_defaults("digits"), "epochs": args.epochs, "seed": 0}
result = fit(model, (splits.train.x, splits.train.y), TrainConfig(**settings), validate=lambda m: validation_error(m, splits))
print(f"best epoch {result.best_epoch}, {result.seconds:.0f} s of training, temperature {model.temperature():.3f}")
for lang in ("en", "zh"):
    accuracy = zero_shot_accuracy(model, splits.test.x, splits.test.y, lang)
    print(f"zero-shot test accuracy with prompts like {prompts(lang)[7]!r}: {accuracy:.1%}")

x = splits.test.x[:10]
similarity = image_features(model, x) @ text_features(model, prompts("zh")).T  # (10 images, 10 prompts)
fig, ax = plt.subplots(figsize=(5, 4))
ax.imshow(similarity.numpy())
ax.set_xlabel("prompt: the digit it names")
ax.set_ylabel(f"test image (true digits {splits.test.y[:10].tolist()})")
fig.savefig(args.out, bbox_inches="tight")
print(f"similarities saved to {args.out}")
