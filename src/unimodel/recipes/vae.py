"""The VAE on the digits (network: ``unimodel.models.vae``): the score early stopping reads and the test NLL.

The validation score is the training objective on held-out images; the test NLL is bounded by the
ELBO and estimated by importance sampling (Burda et al. 2015, arXiv 1509.00519)."""

from __future__ import annotations

import torch

from unimodel.models.vae import VAE, VAEConfig
from unimodel.recipes import ModelSpec


def validation_score(model: VAE, x: torch.Tensor) -> float:
    """The training objective on held-out images (the negative ELBO when kl_weight = 1): what early stopping minimises."""
    terms = model.elbo(x)
    return -(terms["reconstruction"] - model.config.kl_weight * terms["kl"]).mean().item()


@torch.no_grad()
def evaluate(model: VAE, x: torch.Tensor, k: int = 5000, seed: int = 0, batch_size: int = 25) -> dict[str, float]:
    """Test NLL in nats per image, bounded by the ELBO and estimated by importance sampling with K samples."""
    generator = torch.Generator().manual_seed(seed)
    x = x.to(next(model.parameters()).device)
    noise = model.draw_noise((len(x), model.config.latent_dim), generator)
    elbo = model.elbo(x, noise)["elbo"]
    iw = torch.cat([model.importance_weighted_bound(x[i : i + batch_size], k, generator) for i in range(0, len(x), batch_size)])
    return {"nll_elbo": -elbo.mean().item(), "nll_is": -iw.mean().item(), "k": k, "images": len(x)}


SPEC = ModelSpec(
    config_cls=VAEConfig,
    model_cls=VAE,
    validate=lambda model, splits: validation_score(model, splits.val.x),
    evaluate=lambda model, splits, **options: evaluate(model, splits.test.x, **options),
    sample=lambda model, n, generator: model.sample(n, generator),
)
