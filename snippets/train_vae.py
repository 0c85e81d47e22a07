"""Train a VAE on scikit-learn's 8x8 digits and save samples from the prior.

Runs as it stands once the package is installed (`pip install -e .` in the
repository): about half a minute on a laptop CPU.

    python snippets/train_vae.py --epochs 300 --out vae-samples.png
"""
# quick: --epochs 3 --k 10 --out quick.png

import argparse

import torch

from unimodel.data import digits_splits
from unimodel.figures.style import save_image_grid
from unimodel.models.vae import VAE, VAEConfig
from unimodel.recipes.vae import evaluate, validation_score
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=300, help="upper bound on epochs (early stopping usually ends sooner)")
parser.add_argument("--k", type=int, default=1000, help="importance samples for the test NLL")
parser.add_argument("--out", default="vae-samples.png", help="where to save 64 samples from the prior")
args = parser.parse_args()

splits = digits_splits()  # train [:1000], validation [1000:1350], test [1350:]
set_seed(0)  # the same initial weights on every run
model = VAE(VAEConfig(latent_dim=16, hidden_dim=256, likelihood="logistic"))
result = fit(
    model,
    (splits.train.x,),
    TrainConfig(epochs=args.epochs, batch_size=64, lr=1e-3, patience=20, seed=0),
    validate=lambda m: validation_score(m, splits.val.x),  # early stopping on the validation -ELBO
)
scores = evaluate(model, splits.test.x, k=args.k)
print(f"best epoch {result.best_epoch}, {result.seconds:.0f} s of training")
print(f"test NLL: -ELBO {scores['nll_elbo']:.2f}, importance sampling (K={args.k}) {scores['nll_is']:.2f} nats / image")

samples = model.sample(64, torch.Generator().manual_seed(0))  # (64, 64) pixel intensities in [0, 1]
save_image_grid(samples.numpy(), args.out)
print(f"samples saved to {args.out}")
