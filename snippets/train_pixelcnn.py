"""Train a PixelCNN on scikit-learn's 8x8 digits, print its exact test NLL and save samples drawn pixel by pixel.

Runs as it stands once the package is installed (`pip install -e .` in the
repository): a minute or two on a laptop CPU.

    python snippets/train_pixelcnn.py --epochs 200 --out pixelcnn-samples.png
"""
# quick: --epochs 2 --out quick.png

import argparse

import torch

from unimodel.data import digits_splits
from unimodel.figures.style import save_image_grid
from unimodel.models.pixelcnn import PixelCNN, PixelCNNConfig
from unimodel.recipes.pixelcnn import nll
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=200, help="upper bound on epochs (early stopping usually ends sooner)")
parser.add_argument("--out", default="pixelcnn-samples.png", help="where to save 64 samples")
args = parser.parse_args()

splits = digits_splits()  # train [:1000], validation [1000:1350], test [1350:]
set_seed(0)  # the same initial weights on every run
model = PixelCNN(PixelCNNConfig())  # a 7x7 mask-A convolution, 6 residual blocks of 3x3 mask-B convolutions
result = fit(
    model,
    (splits.train.x,),
    TrainConfig(epochs=args.epochs, batch_size=64, optimizer="adam", lr=1e-3, patience=20, seed=0),
    validate=lambda m: nll(m, splits.val.x),  # early stopping on the exact validation NLL
)
print(f"best epoch {result.best_epoch}, {result.seconds:.0f} s of training")
print(f"exact test NLL: {nll(model, splits.test.x):.2f} nats / image")

samples = model.sample(64, torch.Generator().manual_seed(0))  # (64, 64) intensities in [0, 1], 64 network passes
save_image_grid(samples.numpy(), args.out)
print(f"samples saved to {args.out}")
