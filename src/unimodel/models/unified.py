"""A unified model: one decoder-only Transformer that both captions and draws digits.

Chameleon (arXiv 2405.09818) turns an image into discrete codes with a
VQ tokenizer and puts those codes into the same vocabulary as the words, so
one next-token predictor reads and writes both. Here the tokenizer is the
VQ-VAE of ``unimodel.models.vqvae`` (an 8x8 digit becomes 16 codes) and the
words are the digits' names and parities in Chinese and English. Every
training example is one of two sequences, drawn at random:

    generation     [BOS] seven [BOI] c1 ... c16                       (learn the codes)
    understanding  [BOS] [BOI] c1 ... c16 [EOI] [EN] seven odd [EOS]  (learn the caption)

The loss counts only the target part. A generation prompt is replaced by
[NULL] in a share of the examples (label dropout), so the same model also
knows the unconditional distribution and classifier-free guidance works when
sampling (Ho & Salimans 2022, arXiv 2207.12598).

Janus (arXiv 2410.13848) keeps the generation side but gives understanding
its own encoder: ``understanding_encoder="patches"`` replaces the 16 code
embeddings of an understanding sequence by 16 continuous features of a
small convolutional encoder of the pixels, trained with the captions.

A model that learned both directions can caption in two ways: write the
words one at a time (greedy), or rank the ten possible captions by how well
each fits the image *in both directions*, log p(caption | image) +
log p(image | name). The second term is the generator used as a classifier
through Bayes' rule, as diffusion models are in Li et al. 2023
(arXiv 2303.16203).

Read top to bottom: the tokens and the two sequences; the configs; the
Transformer and the training step that every unified family here shares
(``SequenceModel``: the masked, the mixture-of-experts and the Transfusion-style
models build on it); the Chameleon-style model itself (``Unified``) and its
drawing with guidance; captioning. How it is trained (its tokenizer first) and
scored is its recipe (``unimodel.recipes.unified``).

Legend for shape comments: B batch, N image codes per image (16), T tokens
of a sequence, D the width of a token (``dim``), V the vocabulary (the text
tokens, then the K image codes), K codebook entries.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from unimodel.data import DIGIT_LEVELS
from unimodel.models.captions import LANGUAGES, NAMES, PARITY
from unimodel.models.layers import Attention
from unimodel.models.vqvae import VQVAE, VQVAEConfig, as_images, conv_encoder, reconstruct

# ------------------------------------------------------------------ tokens and sequences

PAD, BOS, EOS, BOI, EOI, NULL = "[PAD]", "[BOS]", "[EOS]", "[BOI]", "[EOI]", "[NULL]"
LANGUAGE_TOKEN = {"en": "[EN]", "zh": "[ZH]"}  # before a caption: the language to write it in
WORDS = tuple(sorted({word for lang in LANGUAGES for word in (*NAMES[lang], *PARITY[lang])}))
TEXT_VOCAB = (PAD, BOS, EOS, BOI, EOI, NULL, *LANGUAGE_TOKEN.values(), *WORDS)  # image code k has id len(TEXT_VOCAB) + k
TOKEN_ID = {token: i for i, token in enumerate(TEXT_VOCAB)}
CAPTION_WORDS = 2  # a caption is the digit's name and its parity
IGNORE = -100  # targets cross_entropy skips
TASKS = ("both", "generation", "understanding")
ENCODERS = ("vq", "patches")


def caption_words(digit: int, lang: str) -> list[str]:
    """The caption of a digit: its name and its parity (["seven", "odd"], ["七", "奇数"])."""
    return [NAMES[lang][digit], PARITY[lang][digit % 2]]


def prompt_digits() -> dict[str, int]:
    """Every generation prompt, a digit's name in either language, and the digit it asks for."""
    return {NAMES[lang][digit]: digit for lang in LANGUAGES for digit in range(10)}


def token_ids(tokens: list[str]) -> torch.Tensor:
    return torch.tensor([TOKEN_ID[token] for token in tokens])


# --8<-- [start:sequences]
def generation_prompt(prompts: torch.Tensor) -> torch.Tensor:
    """[BOS] prompt [BOI], (B, 3): what a drawing starts from."""
    B = len(prompts)
    return torch.stack([torch.full((B,), TOKEN_ID[BOS]), prompts.cpu(), torch.full((B,), TOKEN_ID[BOI])], 1)


def generation_sequence(prompts: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[BOS] prompt [BOI] c1..cN: ids (B, N + 3) and the target mask, True on the codes."""
    ids = torch.cat([generation_prompt(prompts).to(codes.device), codes + len(TEXT_VOCAB)], 1)  # image codes live after the text tokens
    target = torch.zeros_like(ids, dtype=torch.bool)
    target[:, 3:] = True
    return ids, target


def understanding_prompt(codes: torch.Tensor, langs: torch.Tensor) -> torch.Tensor:
    """``[BOS] [BOI] c1..cN [EOI] [lang]``, (B, N + 4): what a caption starts from; ``langs`` index LANGUAGES."""
    B = len(codes)
    column = lambda token: torch.full((B, 1), TOKEN_ID[token], device=codes.device)  # noqa: E731
    language = torch.tensor([TOKEN_ID[LANGUAGE_TOKEN[lang]] for lang in LANGUAGES], device=codes.device)[langs.to(codes.device)][:, None]
    return torch.cat([column(BOS), column(BOI), codes + len(TEXT_VOCAB), column(EOI), language], 1)


def understanding_sequence(codes: torch.Tensor, langs: torch.Tensor, captions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[BOS] [BOI] c1..cN [EOI] [lang] caption [EOS]``: ids (B, N + 7) and the target mask, True on the caption and [EOS]."""
    end = torch.full((len(codes), 1), TOKEN_ID[EOS], device=codes.device)
    ids = torch.cat([understanding_prompt(codes, langs), captions.to(codes.device), end], 1)
    target = torch.zeros_like(ids, dtype=torch.bool)
    target[:, -CAPTION_WORDS - 1 :] = True
    return ids, target


# --8<-- [end:sequences]


def caption_ids(y: torch.Tensor, langs: torch.Tensor) -> torch.Tensor:
    """The caption tokens of digits ``y`` in languages ``langs`` (indices into LANGUAGES), (B, 2)."""
    rows = [caption_words(int(d), LANGUAGES[int(lang)]) for d, lang in zip(y, langs, strict=True)]
    return torch.stack([token_ids(row) for row in rows])


def prompt_ids(y: torch.Tensor, langs: torch.Tensor) -> torch.Tensor:
    """The generation prompt of digits ``y``: the digit's name in the language ``langs``, (B,)."""
    return torch.tensor([TOKEN_ID[NAMES[LANGUAGES[int(lang)]][int(d)]] for d, lang in zip(y, langs, strict=True)])


# ------------------------------------------------------------------ config


@dataclass
class SequenceConfig:
    """What every unified model here shares: the sequences, the Transformer, the tasks and the guidance."""

    data_dim: int = 64  # pixels per image: the sequences are built for the 8x8 digits
    tasks: str = "both"  # what the Transformer is trained on: "both" (each example a random one of the two), "generation" or "understanding"
    dim: int = 128  # width D of every token
    depth: int = 4  # Transformer blocks
    heads: int = 4  # attention heads per block; must divide dim
    mlp_ratio: int = 4  # the MLP of a block is mlp_ratio * dim wide
    dropout: float = 0.3  # dropout probability after the embeddings, the attention and the MLP
    label_dropout: float = 0.1  # share of generation examples whose prompt is replaced by [NULL], for classifier-free guidance
    guidance: float = 3.0  # classifier-free guidance scale when sampling: 0 ignores the prompt, 1 is the plain conditional model
    grid: int = 4  # an image is grid x grid tokens in a sequence
    levels: int = DIGIT_LEVELS  # values a pixel can take (0..16)

    def __post_init__(self) -> None:
        for name in ("dim", "depth", "heads", "mlp_ratio"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.tasks not in TASKS:
            raise ValueError(f"tasks must be one of {', '.join(TASKS)}, got {self.tasks!r}")
        if self.dim % self.heads != 0:
            raise ValueError(f"heads must divide dim, got dim={self.dim}, heads={self.heads}")
        if not (0 <= self.dropout < 1 and 0 <= self.label_dropout < 1):
            raise ValueError("dropout and label_dropout must be in [0, 1)")
        if not self.guidance >= 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")

    @property
    def length(self) -> int:
        """The longest sequence: an understanding one, N + 7 tokens."""
        return self.grid * self.grid + 4 + CAPTION_WORDS + 1


@dataclass
class UnifiedConfig(SequenceConfig):
    understanding_encoder: str = "vq"  # how an image is read for captioning: "vq" its codes (Chameleon) or "patches" a separate encoder (Janus)
    codebook_size: int = 32  # K, the tokenizer's codebook (see ``unimodel.models.vqvae``)
    code_dim: int = 16  # width of a code vector of the tokenizer
    tokenizer_epochs: int = 100  # the tokenizer is trained first, for at most this many epochs (early stopping on validation)
    tokenizer_lr: float = 2e-3  # its learning rate (Adam)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tokenizer_epochs < 1:
            raise ValueError(f"tokenizer_epochs must be a positive integer, got {self.tokenizer_epochs}")
        if self.understanding_encoder not in ENCODERS:
            raise ValueError(f"understanding_encoder must be one of {', '.join(ENCODERS)}, got {self.understanding_encoder!r}")
        if not self.tokenizer_lr > 0:
            raise ValueError(f"tokenizer_lr must be > 0, got {self.tokenizer_lr}")
        self.tokenizer_config()  # validates the tokenizer's settings too

    def tokenizer_config(self) -> VQVAEConfig:
        return VQVAEConfig(data_dim=self.data_dim, codebook_size=self.codebook_size, code_dim=self.code_dim, grid=self.grid, levels=self.levels)

    @property
    def vocab(self) -> int:
        return len(TEXT_VOCAB) + self.codebook_size


# ------------------------------------------------------------------ the Transformer


class Block(nn.Module):
    """A decoder block: masked self-attention (the attention of the BLIP chapter) and an MLP, each after a LayerNorm."""

    def __init__(self, c: SequenceConfig) -> None:
        super().__init__()
        self.norm_attention = nn.LayerNorm(c.dim)
        self.attention = Attention(c.dim, c.heads, c.dropout)
        self.norm_mlp = nn.LayerNorm(c.dim)
        self.mlp = nn.Sequential(nn.Linear(c.dim, c.mlp_ratio * c.dim), nn.GELU(), nn.Linear(c.mlp_ratio * c.dim, c.dim), nn.Dropout(c.dropout))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = h + self.attention(self.norm_attention(h), mask=mask)[0]
        return h + self.mlp(self.norm_mlp(h))


def image_start(ids: torch.Tensor) -> torch.Tensor:
    """Where each sequence's [BOI] is, (B,): its image is the N positions after it."""
    return (ids == TOKEN_ID[BOI]).int().argmax(1)


def with_image(h: torch.Tensor, ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Token vectors (B, T, D) with each sequence's image positions replaced by ``features`` (B, N, D)."""
    positions = image_start(ids)[:, None] + 1 + torch.arange(features.shape[1], device=ids.device)  # (B, N)
    return h.scatter(1, positions[..., None].expand(-1, -1, h.shape[-1]), features)


# --8<-- [start:omni-attention]
def omni_attention_mask(ids: torch.Tensor, N: int) -> torch.Tensor:
    """Which token sees which, (B, T, T): causal, and the N tokens after [BOI] (the image) see each other too."""
    T = ids.shape[1]
    position = torch.arange(T, device=ids.device)
    start = image_start(ids)[:, None]  # (B, 1)
    image = (position > start) & (position <= start + N)  # (B, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=ids.device).tril()
    return causal[None] | (image[:, :, None] & image[:, None, :])


# --8<-- [end:omni-attention]


class SequenceModel(nn.Module):
    """One Transformer over the sequences: embeddings, blocks, the next-token head, and the two tasks' training step.

    What a family adds: what an image's N positions hold (``codes``, ``embed_sequence``), how it learns to
    draw (``generation_losses``) and how it draws (``generate_images``).
    """

    exact_likelihood = False  # whether drawing gives log p(image | name) as a sum of token log-probabilities, so it can rank captions too

    def __init__(self, config: SequenceConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab, c.dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.position = nn.Parameter(torch.zeros(1, c.length, c.dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.vocab)

    # --8<-- [start:logits]
    def logits(self, ids: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits (B, T, V) of sequences ``ids`` (B, T), each position seeing what ``attention_mask`` lets it see.

        ``x``: the images (B, P) of understanding sequences, for a model that reads their pixels (``embed_sequence``).
        """
        return self.head(self.states(self.embed_sequence(ids, x), ids))

    def embed_sequence(self, ids: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """The token vectors (B, T, D) of sequences ``ids``: one embedding row per id."""
        return self.embed(ids)

    def states(self, h: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Token vectors (B, T, D) in, with the position embeddings added, through the blocks and the final LayerNorm."""
        h = self.dropout(h + self.position[:, : ids.shape[1]])
        return self.norm(self.transform(h, ids))

    def transform(self, h: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The blocks: token vectors (B, T, D) of sequences ``ids`` in, token vectors out, under ``attention_mask``."""
        mask = self.attention_mask(ids)
        for block in self.blocks:
            h = block(h, mask)
        return h

    def attention_mask(self, ids: torch.Tensor) -> torch.Tensor:
        """Which token sees which, (1, T, T): causal, token t sees tokens 0..t."""
        T = ids.shape[1]
        return torch.ones(T, T, dtype=torch.bool, device=ids.device).tril()[None]

    # --8<-- [end:logits]

    # --8<-- [start:loss]
    def log_likelihoods(self, ids: torch.Tensor, target: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Summed log-probability of each sequence's target tokens, (B,): position t predicts token t + 1."""
        logits = self.logits(ids[:, :-1], x)  # (B, T - 1, V)
        labels = ids[:, 1:].masked_fill(~target[:, 1:], IGNORE)  # only the target part counts
        per_token = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")  # (B, T - 1), 0 where ignored
        return -per_token.sum(1)

    def sequence_losses(self, ids: torch.Tensor, target: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy of each sequence's target tokens, (B,)."""
        return -self.log_likelihoods(ids, target, x) / target[:, 1:].sum(1)

    def forward(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        x, y = batch
        B, c = len(x), self.config
        langs = torch.randint(len(LANGUAGES), (B,))
        generation = {"both": torch.rand(B) < 0.5, "generation": torch.ones(B, dtype=torch.bool), "understanding": torch.zeros(B, dtype=torch.bool)}[c.tasks]
        losses = []
        if generation.any():
            prompts = prompt_ids(y[generation], langs[generation])
            dropped = torch.rand(len(prompts)) < c.label_dropout  # label dropout: these learn p(image) with no prompt
            prompts = prompts.masked_fill(dropped, TOKEN_ID[NULL])
            losses.append(self.generation_losses(prompts, x[generation.to(x.device)]))
        if not generation.all():
            rows = ~generation
            seen = x[rows.to(x.device)]
            ids, target = understanding_sequence(self.codes(seen), langs[rows], caption_ids(y[rows], langs[rows]))
            losses.append(self.sequence_losses(ids, target, seen))
        loss = torch.cat(losses).mean()  # every example counts once, whichever its task
        return loss, {}

    # --8<-- [end:loss]


class Unified(SequenceModel):
    """The tokenizer (frozen once trained) and one causal Transformer over the shared vocabulary."""

    exact_likelihood = True  # log p(codes | name) is a sum over the codes, so drawing can rank captions too (caption_scores)

    def __init__(self, config: UnifiedConfig) -> None:
        tokenizer = VQVAE(config.tokenizer_config())  # built first: its initial weights are those of the tokenizer stage's run of the same seed
        super().__init__(config)
        c = config
        self.tokenizer = tokenizer
        self.tokenizer.requires_grad_(False)  # trained alone first (train_tokenizer), then fixed while the Transformer learns
        if c.understanding_encoder == "patches":  # Janus: the image is read by its own encoder, continuous features
            self.understanding_encoder = conv_encoder(64, c.dim, c.grid)

    def train(self, mode: bool = True) -> Unified:
        super().train(mode)
        self.tokenizer.eval()  # trained before the Transformer, then fixed: no dead-code restarts while the Transformer learns
        return self

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """What an image's N positions hold in a sequence: the tokenizer's codes of images, (B, N)."""
        return self.tokenizer.encode(x)

    def rebuilt(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, P) as the model's image tokens give them back, in [0, 1]: through the tokenizer."""
        return reconstruct(self.tokenizer, x)

    def embed_sequence(self, ids: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """The token vectors of sequences ``ids``; with the Janus encoder and the images ``x`` of understanding sequences, their N code embeddings replaced by the encoder's features."""
        h = self.embed(ids)  # (B, T, D)
        if x is not None and self.config.understanding_encoder == "patches":
            features = self.understanding_encoder(as_images(x, self.config.levels)).flatten(2).transpose(1, 2)  # (B, N, D)
            h = with_image(h, ids, features)  # [BOS] [BOI] features [EOI] ...
        return h

    def generation_losses(self, prompts: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The loss of drawing each image (B, P) after its prompt, (B,): the next-token cross-entropy of its codes.

        ``generator`` is for a loss that draws random numbers (the masked model's); this one draws none.
        """
        return self.sequence_losses(*generation_sequence(prompts, self.codes(x)))

    # --8<-- [start:guidance]
    @torch.no_grad()
    def generate_codes(self, prompts: list[str], guidance: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample the N codes of one image per prompt (a digit's name, or [NULL]), (B, N), with classifier-free guidance.

        One code per step, N steps. Each step runs the sequences twice, with the prompt and with
        [NULL], and samples from softmax(l_null + s (l_prompt - l_null)) over the image codes only.
        """
        c = self.config
        s = c.guidance if guidance is None else guidance
        device = next(self.parameters()).device
        B, N = len(prompts), c.grid**2
        ids = guidance_prefix(prompts).to(device)  # (2B, 3): with and without the prompt
        for _ in range(N):
            logits = self.logits(ids)[:, -1, len(TEXT_VOCAB) : len(TEXT_VOCAB) + c.codebook_size]  # (2B, K): the next token, restricted to image codes
            guided = guided_logits(logits[:B], logits[B:], s)
            k = torch.multinomial(guided.softmax(-1).cpu(), 1, generator=generator).to(device)  # (B, 1)
            ids = torch.cat([ids, (k + len(TEXT_VOCAB)).repeat(2, 1)], 1)
        return ids[:B, 3:] - len(TEXT_VOCAB)

    # --8<-- [end:guidance]

    def generate_images(self, prompts: list[str], guidance: float | None = None, generator: torch.Generator | None = None, **drawing) -> torch.Tensor:
        """One image per prompt, (B, P) in [0, 1]: codes sampled by ``generate_codes`` (with ``drawing``'s settings), decoded by the tokenizer."""
        return self.tokenizer.decode(self.generate_codes(prompts, guidance, generator, **drawing))


def guidance_prefix(prompts: list[str]) -> torch.Tensor:
    """``[BOS] prompt [BOI]`` for each prompt, then ``[BOS] [NULL] [BOI]`` as many times, (2B, 3): the two halves guidance compares."""
    return generation_prompt(torch.cat([token_ids(prompts), torch.full((len(prompts),), TOKEN_ID[NULL])]))


# ------------------------------------------------------------------ drawing with guidance


# --8<-- [start:cfg]
def guided_logits(conditional: torch.Tensor, unconditional: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance on next-token logits: start from the unconditional ones and step ``scale`` times towards the conditional ones."""
    return unconditional + scale * (conditional - unconditional)  # ℓ_g = ℓ_u + s·(ℓ_c - ℓ_u)


# --8<-- [end:cfg]


def draw(model: SequenceModel, prompts: list[str], guidance: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """One image per prompt, (B, P) in [0, 1]: sampled codes, decoded by the tokenizer."""
    model.eval()
    known = prompt_digits()
    unknown = sorted({p for p in prompts if p not in known and p != NULL})
    if unknown:
        raise ValueError(f"unknown prompt(s) {', '.join(unknown)}; a prompt is a digit's name: {', '.join(known)}")
    return model.generate_images(prompts, guidance, generator)


# ------------------------------------------------------------------ captioning


@torch.no_grad()
def write(model: SequenceModel, x: torch.Tensor, lang: str) -> list[list[str]]:
    """Greedy captions of images (B, P) in language ``lang``: the words written, one at a time, before [EOS]."""
    model.eval()
    device = next(model.parameters()).device
    x = x.to(device)
    codes = model.codes(x)
    ids = understanding_prompt(codes, torch.full((len(x),), LANGUAGES.index(lang)))
    writable = torch.tensor([token in WORDS or token == EOS for token in TEXT_VOCAB], device=device)
    for _ in range(CAPTION_WORDS + 1):
        logits = model.logits(ids, x)[:, -1, : len(TEXT_VOCAB)].masked_fill(~writable, float("-inf"))  # words and [EOS] only
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], 1)
    written = ids[:, -(CAPTION_WORDS + 1) :].tolist()
    captions = []
    for row in written:
        tokens = [TEXT_VOCAB[i] for i in row]
        captions.append(tokens[: tokens.index(EOS)] if EOS in tokens else tokens)
    return captions


DIRECTIONS = {"read": "understanding", "draw": "generation"}  # a way to score a caption, and the task that teaches it


def learned_directions(model: SequenceModel) -> tuple[str, ...]:
    """The directions a model can score captions with: those of the tasks it was trained on, "draw" only where it gives log p(codes | name)."""
    return tuple(
        direction for direction, task in DIRECTIONS.items() if model.config.tasks in ("both", task) and (direction == "read" or model.exact_likelihood)
    )


# --8<-- [start:rank]
@torch.no_grad()
def caption_scores(model: SequenceModel, x: torch.Tensor, lang: str, directions: tuple[str, ...] | None = None) -> torch.Tensor:
    """How well each digit's caption fits each image, (B, 10): a sum of log-likelihoods, one term per direction.

    read: log p(caption of d, [EOS] | image), what understanding learned;
    draw: log p(codes of the image | name of d), what generation learned; with equal priors on
    the digits, Bayes' rule makes p(d | image) rank them in the same order.
    ``directions`` defaults to every direction the model was trained on.
    """
    directions = learned_directions(model) if directions is None else directions
    if not directions or set(directions) - set(learned_directions(model)):
        raise ValueError(f"directions must be some of {', '.join(learned_directions(model))} for a model trained on {model.config.tasks}, got {directions}")
    model.eval()
    device = next(model.parameters()).device
    x = x.to(device)
    codes = model.codes(x)
    langs = torch.full((len(x),), LANGUAGES.index(lang))
    scores = torch.zeros(len(x), 10, device=device)
    for d in range(10):
        digits = torch.full((len(x),), d)
        if "read" in directions:
            scores[:, d] += model.log_likelihoods(*understanding_sequence(codes, langs, caption_ids(digits, langs)), x)
        if "draw" in directions:
            scores[:, d] += model.log_likelihoods(*generation_sequence(prompt_ids(digits, langs), codes))
    return scores


# --8<-- [end:rank]


CAPTION_METHODS = ("ranked", "greedy")


def caption(model: SequenceModel, x: torch.Tensor, lang: str, method: str = "ranked") -> list[list[str]]:
    """Captions of images (B, P) in language ``lang``.

    "ranked": the digit's caption that ``caption_scores`` rates highest, with every direction the
    model learned; "greedy": the words the model writes one at a time (``write``).
    """
    if method == "greedy":
        return write(model, x, lang)
    if method == "ranked":
        return [caption_words(int(d), lang) for d in caption_scores(model, x, lang).argmax(1)]
    raise ValueError(f"method must be one of {', '.join(CAPTION_METHODS)}, got {method!r}")


# ------------------------------------------------------------------ drawing and writing as strings


def sample(model: SequenceModel, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` images of random digits, each prompted by its name in a random language, at the config's guidance."""
    names = [NAMES[LANGUAGES[int(torch.randint(2, (), generator=generator))]][int(torch.randint(10, (), generator=generator))] for _ in range(n)]
    return draw(model, names, generator=generator)


def caption_text(words: list[str], lang: str) -> str:
    """A written caption as one string: "seven, odd" or "七，奇数"."""
    return ("，" if lang == "zh" else ", ").join(words)
