"""Train flow matching on the grid of 25 Gaussians, then draw from the same noise with 1, 4, 16 and 100 Euler steps and plot each.

Runs as it stands once the package is installed (`pip install -e .` in the
repository): a minute or two on a laptop CPU.

    python snippets/train_flow_grid.py --epochs 20 --out flow-grid.png
"""
# quick: --epochs 1 --points 2000 --out quick.png

import argparse

import matplotlib

matplotlib.use("Agg")
import torch
from matplotlib import pyplot as plt

from unimodel.mixtures import MIXTURES, mode_metrics
from unimodel.models.flow import FlowConfig, FlowMatching
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=20, help="passes over the training points (200 steps each)")
parser.add_argument("--points", type=int, default=100_000, help="training points drawn from the grid")
parser.add_argument("--out", default="flow-grid.png", help="where to save the plot")
args = parser.parse_args()

grid = MIXTURES["grid"]  # 25 Gaussians of std 0.05 on {-4, -2, 0, 2, 4}^2
x, modes = grid.sample(args.points, torch.Generator().manual_seed(0))
set_seed(0)  # the same initial weights on every run
model = FlowMatching(FlowConfig(data_dim=2))  # the DDPM chapter's residual MLP, asked for a velocity
config = TrainConfig(epochs=args.epochs, batch_size=500, optimizer="adam", lr=2e-3, schedule="cosine", patience=0, seed=0)
result = fit(model, (x, modes), config)  # each step: a random t per point, x_t on the straight line, regress eps - x_0
print(f"{result.seconds:.0f} s of training")

fig, axes = plt.subplots(1, 4, figsize=(14, 3.8))
for ax, steps in zip(axes, (1, 4, 16, 100)):
    samples = model.sample(2500, torch.Generator().manual_seed(0), steps=steps)  # the same noise, `steps` network passes
    scores = mode_metrics(samples, grid)
    print(f"{steps:3d} Euler steps: {scores['modes']} of 25 modes, {scores['high_quality']:.1%} high-quality samples")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, color="black")
    ax.scatter(grid.means[:, 0], grid.means[:, 1], s=60, facecolors="none", edgecolors="red")
    ax.set_aspect("equal")
    ax.set_title(f"{steps} steps: {scores['modes']}/25 modes, {scores['high_quality']:.0%} HQ")
fig.savefig(args.out, bbox_inches="tight")
print(f"plot saved to {args.out}")
