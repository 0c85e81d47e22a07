"""BLIP (Li et al. 2022, arXiv 2201.12086), tiny, for the 8x8 digits and bilingual captions.

"Bootstrapping language-image pre-training": one image encoder (a ViT) and
one text Transformer that works in three modes, the "multimodal mixture of
encoder-decoder" (MED):

- the unimodal text encoder reads a caption alone, bidirectionally, and is
  read at its [CLS] token: with the image's [CLS] it gives CLIP's contrastive
  loss, the image-text contrastive loss (ITC);
- the image-grounded text encoder reads the caption bidirectionally and, in
  every block, also attends to the image's tokens (cross-attention); its
  [ENC] token decides "does this caption match this image?", the image-text
  matching loss (ITM), trained on the pairs of the batch and on hard
  negatives: the wrong captions (and images) that ITC finds most similar;
- the image-grounded text decoder reads the caption causally, each token
  seeing only the tokens before it, with the same cross-attention; it writes
  a caption token by token, the language-modelling loss (LM).

The encoder and the decoder share everything except their self-attention
layers, as in the paper. The captions, their templates and the tokenizer
are the CLIP chapter's (``unimodel.models.clip``); BLIP adds the special
tokens it reads its three modes at, and the decoder is told which language
to write in by a language token after [DEC].

Each loss can be switched off (``itc``, ``itm``, ``lm``), and ITM can draw
its negatives at random instead of hard ones (``hard_negatives``): the
ablation of the chapter. Only the parts the enabled losses use are built
(the ViT always has its head: without ITC it is frozen).

Read top to bottom: the tokens; the config; attention with a mask and with
a context (cross-attention); the MED block and the text Transformer; the
model and its three losses; captioning and ITM's match probability. How
the heads are scored is BLIP's recipe (``unimodel.recipes.blip``).

Legend for shape comments: B batch, T text tokens, N + 1 image tokens (the
patches and the image's [CLS]), D the width of every token (``dim``), E the
width of the ITC embedding (``embed_dim``), V the vocabulary, h heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from unimodel.data import DIGIT_LEVELS
from unimodel.models.captions import (
    CONTEXT,
    EOS,
    PAD,
    draw_captions,
    tokenize,
)
from unimodel.models.captions import (
    VOCAB as CAPTION_VOCAB,
)
from unimodel.models.clip import info_nce
from unimodel.models.layers import Attention
from unimodel.models.vit import ViT, ViTConfig

# ------------------------------------------------------------------ tokens

CLS, ENC, DEC = "[CLS]", "[ENC]", "[DEC]"  # where the text encoder, the grounded encoder and the decoder begin
LANGUAGE_TOKEN = {"en": "[EN]", "zh": "[ZH]"}  # after [DEC]: the language the decoder writes in
VOCAB = (*CAPTION_VOCAB, CLS, ENC, DEC, *LANGUAGE_TOKEN.values())  # the captions' ids are unchanged
TOKEN_ID = {token: i for i, token in enumerate(VOCAB)}
LENGTH = CONTEXT + 2  # the longest sequence: [DEC], the language, the caption and its [EOS]
IGNORE = -100  # targets cross_entropy skips
WRITABLE = torch.tensor([token not in (PAD, CLS, ENC, DEC, *LANGUAGE_TOKEN.values()) for token in VOCAB])  # what the decoder may write


def _prefixed(captions: list[str], prefix: torch.Tensor) -> torch.Tensor:
    """Token ids of the captions after the rows of ``prefix`` (B or 1, P), ended by [EOS] and padded, (B, P + CONTEXT) long."""
    ids = tokenize(captions)  # (B, CONTEXT): the caption, [EOS], [PAD]s
    return torch.cat([prefix.expand(len(ids), -1), ids], dim=1)


def start(token: str) -> torch.Tensor:
    """The one-token prefix of an encoder mode, (1, 1)."""
    return torch.tensor([[TOKEN_ID[token]]])


def decoder_prompt(langs: list[str]) -> torch.Tensor:
    """[DEC] and the language token of each caption: what the decoder is given before it writes, (B, 2)."""
    return torch.tensor([[TOKEN_ID[DEC], TOKEN_ID[LANGUAGE_TOKEN[lang]]] for lang in langs])


# ------------------------------------------------------------------ config


@dataclass
class BLIPConfig:
    data_dim: int = 64  # pixels per image, a square number (8x8 digits: 64)
    patch: int = 4  # side of the image encoder's square patches (4: four patches, as in the CLIP chapter; 2: sixteen, slower to train)
    dim: int = 64  # width D of the tokens of both the image encoder and the text Transformer
    image_depth: int = 3  # ViT blocks
    text_depth: int = 2  # MED blocks
    heads: int = 4  # attention heads per block; must divide dim
    mlp_ratio: int = 2  # the MLP of a block is mlp_ratio times as wide as its tokens
    embed_dim: int = 32  # width E of the ITC embedding both [CLS] tokens project to
    dropout: float = 0.1  # dropout probability everywhere
    init_temperature: float = 0.07  # ITC's softmax temperature at the start, as in CLIP and BLIP
    max_scale: float = 100.0  # ITC's exp(s) is clamped at this
    itc: bool = True  # train the image-text contrastive loss
    itm: bool = True  # train the image-text matching loss
    lm: bool = True  # train the captioning (language-modelling) loss
    hard_negatives: bool = True  # ITM's negatives: sampled by ITC similarity (True) or uniformly among the other digits (False)
    levels: int = DIGIT_LEVELS  # values a pixel can take (0..16)

    def __post_init__(self) -> None:
        for name in ("text_depth", "embed_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if not (self.itc or self.itm or self.lm):
            raise ValueError("at least one of itc, itm and lm must be true")
        if self.itm and self.hard_negatives and not self.itc:
            raise ValueError("hard negatives are mined with the ITC similarity: set itc true, or hard_negatives false")
        if not 0 < self.init_temperature <= 1:
            raise ValueError(f"init_temperature must be in (0, 1], got {self.init_temperature}")
        if not self.max_scale >= 1 / self.init_temperature:
            raise ValueError(f"max_scale must be at least 1 / init_temperature, got {self.max_scale}")
        self.vit_config()  # the ViT checks the image side, the patch, dim, heads, mlp_ratio and dropout

    def vit_config(self) -> ViTConfig:
        """The image encoder: a ViT whose head projects its [CLS] to the E-wide ITC embedding."""
        return ViTConfig(
            data_dim=self.data_dim,
            patch=self.patch,
            dim=self.dim,
            depth=self.image_depth,
            heads=self.heads,
            mlp_ratio=self.mlp_ratio,
            dropout=self.dropout,
            classes=self.embed_dim,
            levels=self.levels,
        )


# ------------------------------------------------------------------ attention


# --8<-- [start:masks]
def padding_mask(ids: torch.Tensor) -> torch.Tensor:
    """Bidirectional: every token may look at every token that is not [PAD], (B, T, T) bool."""
    keys = ids != TOKEN_ID[PAD]  # (B, T)
    return keys[:, None, :].expand(-1, ids.shape[1], -1)


def causal_mask(ids: torch.Tensor) -> torch.Tensor:
    """Causal: token t may look at tokens 0..t that are not [PAD], never at a later one, (B, T, T) bool."""
    T = ids.shape[1]
    past = torch.ones(T, T, dtype=torch.bool, device=ids.device).tril()  # (T, T), True on and below the diagonal
    return padding_mask(ids) & past


# --8<-- [end:masks]


# ------------------------------------------------------------------ the MED block and the text Transformer


# --8<-- [start:med]
class MEDBlock(nn.Module):
    """One block of the text Transformer: self-attention, cross-attention to the image (grounded modes), an MLP.

    The encoder modes use the bidirectional self-attention; the decoder has
    its own, causal one. The cross-attention and the MLP are shared by the
    grounded encoder and the decoder, as in BLIP.
    """

    def __init__(self, config: BLIPConfig) -> None:
        super().__init__()
        c = config
        self.norm_self = nn.LayerNorm(c.dim)
        if c.itc or c.itm:
            self.encoder_attention = Attention(c.dim, c.heads, c.dropout)  # bidirectional
        if c.lm:
            self.decoder_attention = Attention(c.dim, c.heads, c.dropout)  # causal
        if c.itm or c.lm:
            self.norm_cross = nn.LayerNorm(c.dim)
            self.cross_attention = Attention(c.dim, c.heads, c.dropout)
        self.norm_mlp = nn.LayerNorm(c.dim)
        self.mlp = nn.Sequential(nn.Linear(c.dim, c.mlp_ratio * c.dim), nn.GELU(), nn.Linear(c.mlp_ratio * c.dim, c.dim), nn.Dropout(c.dropout))

    def forward(self, h: torch.Tensor, mask: torch.Tensor, image: torch.Tensor | None, decoder: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The tokens after the block, (B, T, D), and the cross-attention weights, (B, h, T, N + 1), or None without an image."""
        attention = self.decoder_attention if decoder else self.encoder_attention
        h = h + attention(self.norm_self(h), mask=mask)[0]
        weights = None
        if image is not None:  # the grounded modes: every text token looks at every image token
            mixed, weights = self.cross_attention(self.norm_cross(h), context=image)
            h = h + mixed
        return h + self.mlp(self.norm_mlp(h)), weights


# --8<-- [end:med]


class TextTransformer(nn.Module):
    """Token and position embeddings and the MED blocks; which mode runs is chosen per call."""

    def __init__(self, config: BLIPConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), config.dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.position = nn.Parameter(torch.zeros(1, LENGTH, config.dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(MEDBlock(config) for _ in range(config.text_depth))
        self.norm = nn.LayerNorm(config.dim)

    def forward(self, ids: torch.Tensor, image: torch.Tensor | None = None, decoder: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The normalised tokens, (B, T, D), and every block's cross-attention weights (empty without an image)."""
        mask = causal_mask(ids) if decoder else padding_mask(ids)
        h = self.dropout(self.embed(ids) + self.position[:, : ids.shape[1]])
        maps = []
        for block in self.blocks:
            h, weights = block(h, mask, image, decoder)
            if weights is not None:
                maps.append(weights)
        return self.norm(h), maps


# ------------------------------------------------------------------ the model


class BLIP(nn.Module):
    """A ViT for the images and the MED text Transformer, trained with the enabled ones of ITC, ITM and LM."""

    def __init__(self, config: BLIPConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.image = ViT(config.vit_config())  # its head projects the image's [CLS] to the ITC embedding
        if not c.itc:
            self.image.head.requires_grad_(False)  # nothing reads the image's ITC embedding: frozen, so data-parallel training skips it
        self.text = TextTransformer(config)
        if c.itc:
            self.text_projection = nn.Linear(c.dim, c.embed_dim)
            self.log_scale = nn.Parameter(torch.tensor(math.log(1 / c.init_temperature)))
        if c.itm:
            self.itm_head = nn.Linear(c.dim, 2)  # [ENC] -> scores of (no match, match)
        if c.lm:
            self.lm_head = nn.Linear(c.dim, len(VOCAB))

    @property
    def device(self) -> torch.device:
        return self.text.position.device

    # ---- the three modes

    def image_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The image encoder's normalised output tokens, [CLS] first, (B, N + 1, D), from integer pixels (B, 64)."""
        h, _ = self.image.encode(x.to(self.device))
        return self.image.norm(h)

    def embed_images(self, x: torch.Tensor) -> torch.Tensor:
        """Unit ITC embeddings of the images, (B, E)."""
        return F.normalize(self.image.head(self.image_tokens(x)[:, 0]), dim=1)

    def embed_text(self, captions: list[str]) -> torch.Tensor:
        """Unit ITC embeddings of the captions, read at [CLS] of the unimodal encoder, (B, E)."""
        h, _ = self.text(_prefixed(captions, start(CLS)).to(self.device))
        return F.normalize(self.text_projection(h[:, 0]), dim=1)

    def match_logits(self, image: torch.Tensor, captions: list[str]) -> torch.Tensor:
        """ITM scores of (no match, match) for image tokens (B, N + 1, D) and B captions, read at [ENC], (B, 2)."""
        h, _ = self.text(_prefixed(captions, start(ENC)).to(self.device), image=image)
        return self.itm_head(h[:, 0])

    def caption_logits(self, image: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Next-token scores after every decoder input token, (B, T, V), and the cross-attention weights of every block."""
        h, maps = self.text(ids.to(self.device), image=image, decoder=True)
        return self.lm_head(h), maps

    # ---- the three losses

    # --8<-- [start:itm]
    def itm_loss(self, image: torch.Tensor, y: torch.Tensor, captions: list[str], similarity: torch.Tensor | None) -> torch.Tensor:
        """ITM on the B pairs of the batch, a negative caption for every image and a negative image for every caption.

        A caption is a negative for an image when it names another digit.
        Hard negatives are drawn with probabilities softmax(similarity) over
        those, so the captions ITC finds most alike are drawn most often;
        otherwise they are drawn uniformly. ``similarity`` (B, B) is ITC's
        image-caption similarity, None for uniform negatives.
        """
        B = len(y)
        scores = (similarity if similarity is not None else torch.zeros(B, B, device=y.device)).detach()
        wrong = y[:, None] != y[None, :]  # (B, B): caption j is wrong for image i, and image j for caption i
        rows = wrong.any(dim=1)  # the pairs with at least one wrong partner in the batch

        def draw(scores: torch.Tensor) -> torch.Tensor:  # row i: one wrong partner j, with probability softmax over the wrong ones
            return torch.multinomial(scores.masked_fill(~wrong, float("-inf"))[rows].softmax(dim=1), 1)[:, 0]

        negative_text = draw(scores)  # for image i: a caption of another digit
        negative_image = draw(scores.T)  # for caption i: an image of another digit
        pairs_image = torch.cat([image, image[rows], image[negative_image]])
        pairs_text = captions + [captions[j] for j in negative_text.tolist()] + [c for c, keep in zip(captions, rows.tolist(), strict=True) if keep]
        target = torch.cat([torch.ones(B), torch.zeros(2 * int(rows.sum()))]).long().to(y.device)
        return F.cross_entropy(self.match_logits(pairs_image, pairs_text), target)

    # --8<-- [end:itm]

    # --8<-- [start:lm]
    def lm_loss(self, image: torch.Tensor, captions: list[str], langs: list[str]) -> torch.Tensor:
        """Next-token cross-entropy of the captions given the image, on the caption and its [EOS] only.

        The decoder reads ``[DEC] [language] w1 ... wn`` and must predict
        ``w1 ... wn [EOS]``: the language token is given, not predicted, and the
        [PAD]s after [EOS] are skipped.
        """
        ids = _prefixed(captions, decoder_prompt(langs)).to(self.device)  # (B, LENGTH)
        targets = ids[:, 1:].clone()
        targets[:, 0] = IGNORE  # the language token is a prompt
        targets[targets == TOKEN_ID[PAD]] = IGNORE
        logits, _ = self.caption_logits(image, ids[:, :-1])  # (B, LENGTH - 1, V)
        return F.cross_entropy(logits.reshape(-1, len(VOCAB)), targets.reshape(-1), ignore_index=IGNORE)

    # --8<-- [end:lm]

    def forward(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss: the sum of the enabled losses on the images and a caption drawn for each (global RNG)."""
        x, y = batch
        y = y.to(self.device)
        captions = draw_captions(y.cpu())  # a random template in a random language per image
        langs = ["en" if text.isascii() else "zh" for text in captions]
        image = self.image_tokens(x)  # (B, N + 1, D)
        losses, similarity = {}, None
        if self.config.itc:
            image_emb = F.normalize(self.image.head(image[:, 0]), dim=1)
            text_emb = self.embed_text(captions)
            losses["itc"] = info_nce(image_emb, text_emb, self.log_scale, self.config.max_scale)
            if self.config.itm and self.config.hard_negatives:
                similarity = self.scale() * image_emb @ text_emb.T  # (B, B), the logits ITC just used
        if self.config.itm:
            losses["itm"] = self.itm_loss(image, y, captions, similarity)
        if self.config.lm:
            losses["lm"] = self.lm_loss(image, captions, langs)
        loss = sum(losses.values())
        return loss, {"loss": loss.item(), **{name: value.item() for name, value in losses.items()}}

    def scale(self) -> torch.Tensor:
        """ITC's exp(s), clamped at max_scale."""
        return self.log_scale.clamp(max=math.log(self.config.max_scale)).exp()


# ------------------------------------------------------------------ captioning


# --8<-- [start:generate]
@torch.no_grad()
def generate(model: BLIP, x: torch.Tensor, lang: str) -> tuple[list[list[str]], list[torch.Tensor]]:
    """Greedy captions of the images x (B, 64) in ``lang``, as token lists, and the cross-attention of the last step.

    The decoder starts from ``[DEC] [language]`` and appends its most likely
    token, among the words of the captions and [EOS], until every caption
    has its [EOS] (or the longest caption's length is reached). The attention weights are every block's, (B, h, T, N + 1),
    for the whole caption, read on the final, complete sequence.
    """
    training = model.training
    model.eval()
    image = model.image_tokens(x)
    ids = decoder_prompt([lang] * len(x)).to(model.device)  # (B, 2): [DEC] [language]
    done = torch.zeros(len(x), dtype=torch.bool, device=model.device)
    while ids.shape[1] < LENGTH and not done.all():
        logits, _ = model.caption_logits(image, ids)
        token = logits[:, -1].masked_fill(~WRITABLE.to(model.device), float("-inf")).argmax(dim=1)
        token[done] = TOKEN_ID[PAD]  # a finished caption is padded
        ids = torch.cat([ids, token[:, None]], dim=1)
        done |= token == TOKEN_ID[EOS]
    _, maps = model.caption_logits(image, ids)
    model.train(training)
    tokens = [[VOCAB[i] for i in row[2:]] for row in ids.tolist()]
    return [row[: row.index(EOS)] if EOS in row else [t for t in row if t != PAD] for row in tokens], maps


# --8<-- [end:generate]


def caption_text(tokens: list[str], lang: str) -> str:
    """The caption the tokens spell: English words joined by spaces, Chinese characters run together."""
    return " ".join(tokens) if lang == "en" else "".join(tokens)


# ------------------------------------------------------------------ ITM's match probability


@torch.no_grad()
def match_probability(model: BLIP, x: torch.Tensor, captions: list[str]) -> torch.Tensor:
    """ITM's probability that caption i matches image i, in eval mode, on the CPU, (n,)."""
    training = model.training
    model.eval()
    probability = model.match_logits(model.image_tokens(x), captions).softmax(dim=1)[:, 1].cpu()
    model.train(training)
    return probability
