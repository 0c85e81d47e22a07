"""CLIP (Radford et al. 2021, arXiv 2103.00020), tiny, for the 8x8 digits and bilingual captions.

"Learning transferable visual models from natural language supervision":
an image encoder and a text encoder each map their input to a vector of the
same width, at length 1. Trained on pairs (image, its caption), the loss
asks every image to be more similar to its own caption than to the other
captions of the batch, and every caption to its own image: a softmax over
the batch in both directions, the symmetric InfoNCE. Nothing is ever told
"this is class 7"; afterwards the model classifies "zero-shot" by writing a
prompt for every class ("a handwritten seven") and picking the prompt whose
embedding is nearest the image's.

The captions, made up from what is known about each digit in English or
Chinese, and their tokenizer live in ``unimodel.models.captions`` (BLIP and
the unified model read them too); the zero-shot prompts come from a
template whose exact strings never occur as a training caption.

Read top to bottom: the config; the two encoders; the loss; the model; the embeddings of
images and captions that zero-shot classification and retrieval compare. How they are
scored is CLIP's recipe (``unimodel.recipes.clip``).

Legend for shape comments: B batch, L tokens per caption (``CONTEXT``), D
the width of a text token (``text_dim``), E the width of the shared
embedding (``embed_dim``), V the vocabulary size, n images scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from unimodel.data import DIGIT_LEVELS
from unimodel.models.captions import CONTEXT, EOS, TOKEN_ID, VOCAB, draw_captions, tokenize
from unimodel.models.layers import Block
from unimodel.models.vit import ViT, ViTConfig

# ------------------------------------------------------------------ config


@dataclass
class CLIPConfig:
    data_dim: int = 64  # pixels per image, a square number (8x8 digits: 64)
    patch: int = 4  # side of the image encoder's square patches in pixels; must divide the image's side
    image_dim: int = 64  # width of the image encoder's tokens (the ViT's dim)
    image_depth: int = 3  # Transformer blocks of the image encoder
    text_dim: int = 64  # width D of the text encoder's tokens
    text_depth: int = 2  # Transformer blocks of the text encoder
    heads: int = 4  # attention heads per block in both encoders; must divide image_dim and text_dim
    mlp_ratio: int = 2  # the MLP of a block is mlp_ratio times as wide as its tokens
    embed_dim: int = 32  # width E of the shared embedding both encoders project to
    dropout: float = 0.1  # dropout probability in both encoders
    init_temperature: float = 0.07  # the softmax temperature at the start: the log-scale s starts at log(1 / 0.07)
    max_scale: float = 100.0  # exp(s) is clamped at this, so the temperature never drops below 1 / max_scale
    levels: int = DIGIT_LEVELS  # values a pixel can take (0..16)

    def __post_init__(self) -> None:
        for name in ("data_dim", "patch", "image_dim", "image_depth", "text_dim", "text_depth", "heads", "mlp_ratio", "embed_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.text_dim % self.heads != 0:
            raise ValueError(f"heads must divide text_dim, got text_dim={self.text_dim}, heads={self.heads}")
        if self.embed_dim < 2:
            raise ValueError(f"embed_dim must be at least 2, got {self.embed_dim}")
        if not 0 <= self.dropout < 1:  # also rejects NaN
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 < self.init_temperature <= 1:
            raise ValueError(f"init_temperature must be in (0, 1], got {self.init_temperature}")
        if not self.max_scale >= 1 / self.init_temperature:
            raise ValueError(f"max_scale must be at least 1 / init_temperature, got {self.max_scale}")
        self.vit_config()  # the ViT checks the image side, the patch and image_dim against heads

    def vit_config(self) -> ViTConfig:
        """The image encoder's config: a ViT whose "classes" are the E outputs of the projection."""
        return ViTConfig(
            data_dim=self.data_dim,
            patch=self.patch,
            dim=self.image_dim,
            depth=self.image_depth,
            heads=self.heads,
            mlp_ratio=self.mlp_ratio,
            dropout=self.dropout,
            classes=self.embed_dim,
            levels=self.levels,
        )


# ------------------------------------------------------------------ encoders


class TextEncoder(nn.Module):
    """Token and position embeddings -> pre-norm Transformer blocks -> LayerNorm of the [EOS] token -> projection.

    ``Block`` has no attention mask, so every token also attends to the
    [PAD]s after [EOS]. That is made harmless by padding every caption to the
    same fixed length ``CONTEXT`` (as CLIP pads to 77): a caption's tokens, and
    so its embedding, never depend on the other captions of the batch. The
    caption is read at its [EOS] token (as in CLIP), which has attended to the
    whole caption.
    """

    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        c = config
        self.embed = nn.Embedding(len(VOCAB), c.text_dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.position = nn.Parameter(torch.zeros(1, CONTEXT, c.text_dim))  # one learned vector per place, (1, L, D)
        nn.init.trunc_normal_(self.position, std=0.02)
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c.text_dim, c.heads, c.mlp_ratio, c.dropout) for _ in range(c.text_depth))
        self.norm = nn.LayerNorm(c.text_dim)
        self.project = nn.Linear(c.text_dim, c.embed_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """The unnormalised text features, (B, E), from token ids (B, L)."""
        h = self.dropout(self.embed(ids) + self.position)  # (B, L, D)
        for block in self.blocks:
            h, _ = block(h)
        eos = (ids == TOKEN_ID[EOS]).long().argmax(dim=1)  # the place of each caption's [EOS], (B,)
        h = h[torch.arange(len(ids), device=ids.device), eos]  # (B, D)
        return self.project(self.norm(h))  # W_t·LN(z_L^eos), (B, E)


# ------------------------------------------------------------------ the loss


# --8<-- [start:info-nce]
def info_nce(image_emb: torch.Tensor, text_emb: torch.Tensor, log_scale: torch.Tensor, max_scale: float = 100.0) -> torch.Tensor:
    """The symmetric InfoNCE of CLIP on B pairs: unit image embeddings (B, E) and unit text embeddings (B, E).

    Pair b is (image b, text b); the logits are the scaled cosine
    similarities of every image with every text, and the loss is the mean of
    the cross-entropies of the diagonal, row-wise (image -> text) and
    column-wise (text -> image). exp(log_scale) is clamped at ``max_scale``.

    Only the diagonal counts as positive, as in CLIP, although in a batch of
    digits several images share a label and their captions are, in truth,
    right for each other too (the same caption can even be drawn twice). The
    loss treats those as negatives; with 10 digits it still learns to pull a
    digit's images and captions together, and the false negatives only cap
    how low the loss can go.
    """
    scale = log_scale.clamp(max=math.log(max_scale)).exp()  # exp(s), at most max_scale
    logits = scale * image_emb @ text_emb.T  # exp(s)·I Tᵀ, (B, B)
    target = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2  # (CE(ITᵀ) + CE(TIᵀ)) / 2


# --8<-- [end:info-nce]


# ------------------------------------------------------------------ the model


class CLIP(nn.Module):
    """A ViT for the images, a small Transformer for the captions, both projected to unit vectors of width E."""

    def __init__(self, config: CLIPConfig) -> None:
        super().__init__()
        self.config = config
        self.image = ViT(config.vit_config())  # its head, with E outputs, projects the normalised [CLS]
        self.text = TextEncoder(config)
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / config.init_temperature)))  # s, learned

    @property
    def device(self) -> torch.device:
        return self.log_scale.device

    def scale(self) -> torch.Tensor:
        """exp(s), clamped at max_scale: the inverse temperature of the softmax."""
        return self.log_scale.clamp(max=math.log(self.config.max_scale)).exp()

    def temperature(self) -> float:
        return 1.0 / self.scale().item()

    def embed_images(self, x: torch.Tensor) -> torch.Tensor:
        """Unit image embeddings, (B, E), from integer pixels (B, 64)."""
        return F.normalize(self.image.logits(x.to(self.device)), dim=1)  # W_i·LN(z_L^cls) at length 1

    def embed_text(self, captions: list[str]) -> torch.Tensor:
        """Unit text embeddings, (B, E), from captions."""
        return F.normalize(self.text(tokenize(captions).to(self.device)), dim=1)

    def forward(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss: the symmetric InfoNCE of the images and a caption drawn for each label (global RNG)."""
        x, y = batch
        captions = draw_captions(y.cpu())  # a random template in a random language per image
        image_emb, text_emb = self.embed_images(x), self.embed_text(captions)  # (B, E) each
        loss = info_nce(image_emb, text_emb, self.log_scale, self.config.max_scale)
        with torch.no_grad():
            hits = (image_emb @ text_emb.T).argmax(dim=1) == torch.arange(len(x), device=self.device)
        return loss, {"loss": loss.item(), "temperature": self.temperature(), "batch_accuracy": hits.float().mean().item()}


# ------------------------------------------------------------------ embeddings


@torch.no_grad()
def image_features(model: CLIP, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The unit image embeddings of x (n, 64), in eval mode, on the CPU, (n, E): features for a linear probe."""
    training = model.training
    model.eval()
    features = torch.cat([model.embed_images(x[i : i + batch_size]).cpu() for i in range(0, len(x), batch_size)])
    model.train(training)
    return features


@torch.no_grad()
def text_features(model: CLIP, captions: list[str]) -> torch.Tensor:
    """The unit text embeddings of the captions, in eval mode, on the CPU, (B, E)."""
    training = model.training
    model.eval()
    features = model.embed_text(captions).cpu()
    model.train(training)
    return features
