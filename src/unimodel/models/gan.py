"""A generative adversarial network: a generator G and a discriminator D.

G turns noise z ~ N(0, I) into a sample; D gives each input a logit, the log
odds that it is real. They play a game: D minimises the cross-entropy of
telling real from generated, G tries to fool D. For 2-D points both are MLPs
(G of ReLU layers with batch normalisation, as in PacGAN's experiments; D of
LeakyReLU or, as PacGAN's, maxout layers); for the 8x8 digits both are small
convolutional nets.

Two remedies for mode collapse, both measured in the GAN chapter:

* the R1 penalty (Mescheder et al. 2018): D's loss adds gamma/2 times the
  squared norm of the gradient of its logit at real points, which makes the
  game converge near its equilibrium instead of circling it;
* PacGAN packing (Lin et al. 2018): with ``pack = m`` D judges m samples at
  once, all real or all generated, concatenated into one input, so a
  generator whose samples sit on a few modes makes packs that look alike.

And one fix at sampling time, discriminator rejection sampling (Azadi et al.
2019): with ``rejection=True`` a third network, the ratio network, learns the
same real-or-generated classification as D but with no penalty and no
influence on G, so that its logit estimates log p_data(x) / p_G(x) (the
optimal discriminator's); ``sample`` then throws away draws it finds less
likely under the data than under G, such as points between two modes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from unimodel.data import DIGIT_LEVELS, DIGIT_SIDE

LOSSES = ("non-saturating", "minimax")
CANDIDATES = 1000  # fewest draws rejection sampling scores at once, so that their median is a steady threshold


@dataclass
class GANConfig:
    data_dim: int = 2  # values per example: 2 for the 2-D mixtures (MLPs), 64 for the 8x8 digits (convolutional nets)
    noise_dim: int = 0  # size of the noise z ~ N(0, I); 0 picks 2 for 2-D data (as PacGAN) and 32 for images
    hidden: int = 128  # width of the generator's hidden layers (2-D data)
    layers: int = 4  # hidden layers of the generator (2-D data)
    d_hidden: int = 128  # width of the discriminator's maxout layers (2-D data)
    d_layers: int = 3  # maxout layers of the discriminator (2-D data)
    maxout: int = 1  # linear pieces per maxout unit of the discriminator (PacGAN uses 5); 1: LeakyReLU units, faster
    channels: int = 64  # feature maps of the convolutional nets (images)
    pack: int = 1  # PacGAN: the discriminator judges this many samples at once; 1 is a plain GAN
    r1: float = 0.0  # weight of the R1 penalty, gamma/2 * E||grad_x D(x)||^2 on real data (Mescheder et al. 2018); 0: none
    loss: str = "non-saturating"  # the generator's loss: "non-saturating" (-log D(G(z))) or "minimax" (log(1 - D(G(z))))
    rejection: bool = False  # discriminator rejection sampling: a third network learns p_data / p_G, and sample() drops draws it rates low

    def __post_init__(self) -> None:
        if self.data_dim not in (2, DIGIT_SIDE * DIGIT_SIDE):
            raise ValueError(f"data_dim must be 2 (points) or {DIGIT_SIDE * DIGIT_SIDE} (8x8 images), got {self.data_dim}")
        if self.noise_dim == 0:
            self.noise_dim = 2 if self.data_dim == 2 else 32
        if min(self.noise_dim, self.hidden, self.layers, self.d_hidden, self.d_layers, self.maxout, self.channels, self.pack) < 1:
            raise ValueError("noise_dim, hidden, layers, d_hidden, d_layers, maxout, channels and pack must be positive")
        if self.r1 < 0:
            raise ValueError(f"r1 must be >= 0, got {self.r1}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")

    @property
    def images(self) -> bool:
        return self.data_dim != 2


class Maxout(nn.Module):
    """The largest of ``pieces`` linear functions of the input, per output unit."""

    def __init__(self, inputs: int, outputs: int, pieces: int):
        super().__init__()
        self.pieces = pieces
        self.linear = nn.Linear(inputs, outputs * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).unflatten(-1, (-1, self.pieces)).amax(-1)  # (B, outputs)


def mlp_generator(config: GANConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = config.noise_dim
    for _ in range(config.layers):
        layers += [nn.Linear(width, config.hidden), nn.BatchNorm1d(config.hidden), nn.ReLU()]
        width = config.hidden
    return nn.Sequential(*layers, nn.Linear(width, config.data_dim))


def mlp_discriminator(config: GANConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = config.data_dim * config.pack  # a pack of samples, concatenated
    for _ in range(config.d_layers):
        if config.maxout > 1:
            layers.append(Maxout(width, config.d_hidden, config.maxout))
        else:
            layers += [nn.Linear(width, config.d_hidden), nn.LeakyReLU(0.2)]
        width = config.d_hidden
    return nn.Sequential(*layers, nn.Linear(width, 1))


def conv_generator(config: GANConfig) -> nn.Sequential:
    c = config.channels
    return nn.Sequential(
        nn.Linear(config.noise_dim, 2 * c * 2 * 2), nn.Unflatten(1, (2 * c, 2, 2)), nn.BatchNorm2d(2 * c), nn.ReLU(),
        nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU(),  # 4x4
        nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1), nn.Flatten(), nn.Sigmoid(),  # 8x8 intensities in [0, 1]
    )  # fmt: skip


def conv_discriminator(config: GANConfig) -> nn.Sequential:
    c = config.channels
    return nn.Sequential(
        nn.Unflatten(1, (config.pack, DIGIT_SIDE, DIGIT_SIDE)),  # a pack of images as channels
        nn.Conv2d(config.pack, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 4x4
        nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 2x2
        nn.Flatten(), nn.Linear(2 * c * 2 * 2, 1),
    )  # fmt: skip


# --8<-- [start:losses]
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))] with D = σ(logit)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()  # -log σ(l) = softplus(-l)


def generator_loss(fake_logits: torch.Tensor, kind: str = "non-saturating") -> torch.Tensor:
    """Minimax: E[log(1 - D(G(z)))], the game's own loss; non-saturating: -E[log D(G(z))]."""
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()  # log(1 - σ(l)) = -softplus(l)
    return F.softplus(-fake_logits).mean()


# --8<-- [end:losses]


class GAN(nn.Module):
    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        discriminator = conv_discriminator if config.images else mlp_discriminator
        self.generator = conv_generator(config) if config.images else mlp_generator(config)
        self.discriminator = discriminator(config)
        self.players = ("discriminator", "generator")  # the training loop steps them in this order on every batch
        if config.rejection:  # judges one sample at a time, with no penalty, and G never learns from it
            self.ratio = discriminator(replace(config, pack=1))
            self.players += ("ratio",)

    def player_parameters(self, player: str):
        return getattr(self, player).parameters()

    def as_input(self, x: torch.Tensor) -> torch.Tensor:
        """Training data as the networks see it: points unchanged, pixel levels 0..16 scaled to [0, 1]."""
        return x.float() / (DIGIT_LEVELS - 1) if self.config.images else x.float()

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples G(z), (n, data_dim), with gradients."""
        device = next(self.parameters()).device
        return self.generator(torch.randn(n, self.config.noise_dim, generator=generator).to(device))

    def judge(self, samples: torch.Tensor) -> torch.Tensor:
        """D's logits for samples (B, data_dim) grouped into packs: (B // pack,)."""
        packs = len(samples) // self.config.pack
        return self.discriminator(samples[: packs * self.config.pack].reshape(packs, -1)).squeeze(1)

    # --8<-- [start:players]
    def forward(self, batch: tuple[torch.Tensor, ...], player: str) -> tuple[torch.Tensor, dict[str, float]]:
        """One player's loss on a batch of real data: the discriminator's or the generator's."""
        real = self.as_input(batch[0])
        if len(real) < self.config.pack:
            raise ValueError(f"a batch of {len(real)} cannot fill a pack of {self.config.pack}")
        if player == "discriminator":
            with torch.no_grad():
                fake = self.draw(len(real))  # G is held fixed during D's step
            real.requires_grad_(self.config.r1 > 0)
            real_logits, fake_logits = self.judge(real), self.judge(fake)
            metrics = {"d_real": torch.sigmoid(real_logits).mean().item(), "d_fake": torch.sigmoid(fake_logits).mean().item()}
            loss = discriminator_loss(real_logits, fake_logits)
            if self.config.r1 > 0:
                (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)  # d logit / d x, (B, data_dim)
                penalty = grad.pow(2).sum(1).mean() * self.config.pack  # per pack: each pack's gradient spans its samples
                loss = loss + self.config.r1 / 2 * penalty
                metrics["r1"] = penalty.item()
            return loss, metrics
        if player == "ratio":  # the same classification as D's, to read its logit as log p_data(x) / p_G(x)
            with torch.no_grad():
                fake = self.draw(len(real))
            return discriminator_loss(self.ratio(real).squeeze(1), self.ratio(fake).squeeze(1)), {}
        fake_logits = self.judge(self.draw(len(real)))  # gradients flow through D into G
        return generator_loss(fake_logits, self.config.loss), {}

    # --8<-- [end:players]

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, rejection: bool | None = None) -> torch.Tensor:
        """n samples: points (n, 2), or images (n, 64) with intensities in [0, 1].

        rejection: keep only the draws the ratio network accepts (None: when the config trains one).
        """
        rejection = self.config.rejection if rejection is None else rejection
        if rejection and not self.config.rejection:
            raise ValueError("this GAN has no ratio network to reject samples with (train it with rejection=True)")
        training = self.training
        self.eval()  # batch normalisation uses its running statistics, so a sample does not depend on the others
        samples = self.rejection_sample(n, generator) if rejection else self.draw(n, generator)
        self.train(training)
        return samples

    # --8<-- [start:rejection]
    def accepted(self, candidates: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Which draws (B, data_dim) to keep, (B,) bool: each with probability min(1, exp(l(x) - M)).

        l is the ratio network's logit, ~ log p_data(x) / p_G(x) when it classifies well;
        M is the median of l over the candidates, so the better half is always kept.
        """
        log_ratio = self.ratio(candidates).squeeze(1)
        chance = torch.rand(len(candidates), generator=generator).to(log_ratio.device)
        return chance < (log_ratio - log_ratio.median()).exp()

    def rejection_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws of G that passed ``accepted``, drawn in rounds of at least CANDIDATES."""
        kept, count = [], 0
        while count < n:
            candidates = self.draw(max(2 * n, CANDIDATES), generator)
            keep = self.accepted(candidates, generator)
            if not keep.any():  # at least the half above the median passes, unless the logits are not numbers
                raise RuntimeError("the ratio network gives no finite logits: this run cannot sample with rejection")
            kept.append(candidates[keep])
            count += int(keep.sum())
        return torch.cat(kept)[:n]

    # --8<-- [end:rejection]
