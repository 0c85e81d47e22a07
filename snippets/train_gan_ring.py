"""Train a GAN on the ring of 8 Gaussians and plot its samples.

Runs as it stands once the package is installed (`pip install -e .` in the
repository): about a minute on a laptop CPU.

    python snippets/train_gan_ring.py --epochs 40 --r1 0.01 --rejection --out gan-ring.png
"""
# quick: --epochs 1 --points 2000 --rejection --out quick.png

import argparse

import matplotlib

matplotlib.use("Agg")
import torch
from matplotlib import pyplot as plt

from unimodel.mixtures import MIXTURES, mode_metrics
from unimodel.models.gan import GAN, GANConfig
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=40, help="passes over the training points (200 steps each)")
parser.add_argument("--points", type=int, default=100_000, help="training points drawn from the ring")
parser.add_argument("--r1", type=float, default=0.01, help="weight of the R1 penalty on the discriminator's gradient at real points; 0 for a plain GAN")
parser.add_argument("--rejection", action="store_true", help="also train a ratio network and keep only the draws it accepts (discriminator rejection sampling)")
parser.add_argument("--out", default="gan-ring.png", help="where to save the plot")
args = parser.parse_args()

ring = MIXTURES["ring"]  # 8 Gaussians of std 0.01 on the unit circle
x, modes = ring.sample(args.points, torch.Generator().manual_seed(0))
set_seed(0)  # the same initial weights on every run
model = GAN(GANConfig(data_dim=2, r1=args.r1, rejection=args.rejection))  # G: 4 x 128 ReLU + batch norm, D (and the ratio network): 3 x 128 LeakyReLU
config = TrainConfig(epochs=args.epochs, batch_size=500, optimizer="adam", lr=4e-3, beta1=0.5, schedule="cosine", patience=0, seed=0)
result = fit(model, (x, modes), config)  # each batch: one discriminator step, one generator step (and one ratio-network step)

samples = model.sample(2500, torch.Generator().manual_seed(0))  # (2500, 2); with --rejection, only draws the ratio network accepts
scores = mode_metrics(samples, ring)
print(f"{result.seconds:.0f} s of training; {scores['modes']} of 8 modes, {scores['high_quality']:.1%} high-quality samples")

fig, ax = plt.subplots(figsize=(4, 4))
ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, color="black")
ax.scatter(ring.means[:, 0], ring.means[:, 1], s=60, facecolors="none", edgecolors="red")
ax.set_aspect("equal")
ax.set_title(f"{scores['modes']}/8 modes, {scores['high_quality']:.0%} high quality")
fig.savefig(args.out, bbox_inches="tight")
print(f"plot saved to {args.out}")
