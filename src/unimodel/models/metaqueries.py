"""A MetaQueries-style unified model: a frozen reader, learnable queries, a connector and a flow-matching decoder.

MetaQueries (Pan et al. 2025, arXiv 2504.06256) does not train its multimodal LLM at all. It appends
N learnable query tokens to the prompt, runs the frozen LLM over both, and takes the LLM's last
hidden states at the queries; a trainable connector (a Transformer encoder) turns them into the
conditions a diffusion decoder reads by cross-attention. Only the queries, the connector and the
decoder learn, with the decoder's loss alone, so the LLM's understanding is untouched. Here:

- the reader is one of this site's Chameleon-style models (``Unified``, its VQ tokenizer inside),
  loaded from its run and never changed; the fields of ``UnifiedConfig`` describe it, and ``reader``
  says which run: by default the chapter's model, trained on captions and drawings, so it has read
  every digit's name as a prompt; or the one trained on captions only, which has met a name only as
  a word to write (the hands-on chapter measures what each gives the queries);
- the reader's sequence is ``[BOS] prompt [BOI] q1..qN``: the N queries take the positions an
  image's codes take in a generation sequence, under the reader's own causal attention, so query
  n sees the prompt and the queries before it;
- the connector is a stack of bidirectional encoder blocks over the N states (``layers.Block``), then
  a LayerNorm and a linear map to the decoder's width;
- the decoder is a small Transformer over the 16 patches of a noisy image (the Transfusion-style
  model's 2x2 patches and noise-level embedding): self-attention among the patches, cross-attention
  on the N conditions, an MLP, trained by flow matching and drawn by Euler steps with classifier-free
  guidance, as BAGEL's and the Transfusion-style model's images are.

Reading and captions are the reader's, bit for bit. ``reader="untrained"`` keeps the reader at its
random initial weights: a control that asks what the queries, the connector and the decoder learn
from a reader that understands nothing.

Legend for shape comments: B batch, N queries, M patches per image (16), Q pixels per patch (4),
T tokens, D the reader's width, E the decoder's width, U distinct prompts in a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from unimodel.data import DIGIT_SIDE
from unimodel.experiments.flow import euler_sample, training_example, velocity_target
from unimodel.limits import MAX_STEPS, check_count
from unimodel.models.captions import LANGUAGES
from unimodel.models.diffusion import timestep_embedding
from unimodel.models.flow import TIME_SCALE
from unimodel.models.layers import Attention, Block
from unimodel.models.transfusion import patches, unpatched
from unimodel.models.unified import NULL, PAD, TOKEN_ID, Unified, UnifiedConfig, generation_prompt, guided_logits, prompt_ids, token_ids, with_image

READERS = {  # which reader, and the tasks its run was trained on
    "understanding": "understanding",  # the Chameleon-style model trained on captions only: an understanding model, as MetaQueries' MLLM is
    "joint": "both",  # the chapter's model, trained on captions and drawings: it has read every digit's name as a prompt
    "untrained": "understanding",  # its random initial weights: a control that understands nothing
}


@dataclass
class MetaQueriesConfig(UnifiedConfig):
    """The fields of ``UnifiedConfig`` describe the frozen reader; the rest are the drawing side's.

    ``label_dropout`` and ``guidance`` are the drawing's, as in every unified model here; the decoder has no dropout.
    """

    tasks: str = "both"  # always "both": the frozen reader reads and the decoder draws (what the reader was trained on is ``reader``)
    dim: int = 128  # width D of the reader's tokens, of the queries and of the connector
    depth: int = 4  # the reader's Transformer blocks
    dropout: float = 0.3  # the reader's dropout while it was trained (frozen, it runs without); the connector and the decoder have none
    queries: int = 16  # N learnable query tokens appended to the prompt
    connector_depth: int = 2  # bidirectional encoder blocks of the connector
    decoder_dim: int = 128  # width E of the decoder's tokens
    decoder_depth: int = 2  # decoder blocks: self-attention, cross-attention on the conditions, MLP
    decoder_heads: int = 4  # attention heads per decoder attention; must divide decoder_dim
    time_dim: int = 64  # size of the sinusoidal embedding of the noise level t
    sample_steps: int = 16  # Euler steps (passes of the decoder) that draw an image
    reader: str = "joint"  # the frozen reader: "understanding" (trained on captions only), "joint" (on captions and drawings) or "untrained"

    def __post_init__(self) -> None:
        super().__post_init__()
        if DIGIT_SIDE % self.grid or self.data_dim != DIGIT_SIDE**2:
            raise ValueError(f"grid must divide the image's side {DIGIT_SIDE} and data_dim be {DIGIT_SIDE**2}, got grid={self.grid}, data_dim={self.data_dim}")
        if self.tasks != "both":
            raise ValueError(f"a MetaQueries model reads with its frozen reader and draws with its decoder: tasks must be 'both', got {self.tasks!r}")
        if not 1 <= self.queries <= self.length - 3:
            raise ValueError(f"queries must be between 1 and {self.length - 3} (the reader's positions after [BOS] prompt [BOI]), got {self.queries}")
        for name in ("connector_depth", "decoder_dim", "decoder_depth", "decoder_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.decoder_dim % self.decoder_heads:
            raise ValueError(f"decoder_heads must divide decoder_dim, got {self.decoder_dim}, {self.decoder_heads}")
        if self.time_dim < 2 or self.time_dim % 2:
            raise ValueError(f"time_dim must be even and positive, got {self.time_dim}")
        if self.reader not in READERS:
            raise ValueError(f"reader must be one of {', '.join(READERS)}, got {self.reader!r}")
        check_count(self.sample_steps, "sample_steps", MAX_STEPS)

    def reader_config(self) -> UnifiedConfig:
        """The reader's config: this config's ``UnifiedConfig`` fields, with the tasks the reader was trained on."""
        return UnifiedConfig(**{**{f.name: getattr(self, f.name) for f in fields(UnifiedConfig)}, "tasks": READERS[self.reader]})

    @property
    def patch(self) -> int:
        """The side of a patch in pixels: 2 for a 4x4 grid of patches on an 8x8 image."""
        return DIGIT_SIDE // self.grid


class DecoderBlock(nn.Module):
    """Self-attention among the patches, cross-attention on the conditions, an MLP: each after a LayerNorm, each added to its input."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm_attention = nn.LayerNorm(dim)
        self.attention = Attention(dim, heads, 0.0)
        self.norm_cross = nn.LayerNorm(dim)
        self.cross = Attention(dim, heads, 0.0)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, h: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        h = h + self.attention(self.norm_attention(h))[0]  # every patch sees every patch
        h = h + self.cross(self.norm_cross(h), conditions)[0]  # and reads the N conditions
        return h + self.mlp(self.norm_mlp(h))


class MetaQueries(nn.Module):
    """A frozen reader, N learnable queries, a connector and a flow-matching decoder; only the last three learn."""

    exact_likelihood = False  # drawing gives no log p(image | name): captions are ranked by reading only

    def __init__(self, config: MetaQueriesConfig) -> None:
        super().__init__()
        self.config = c = config
        self.reader = Unified(c.reader_config())
        self.reader.requires_grad_(False)  # loaded from the reader's run (``recipes.metaqueries``), then never trained
        self.queries = nn.Parameter(torch.randn(1, c.queries, c.dim) * 0.02)  # (1, N, D)
        self.connector = nn.ModuleList(Block(c.dim, c.heads, c.mlp_ratio, 0.0) for _ in range(c.connector_depth))
        self.to_decoder = nn.Sequential(nn.LayerNorm(c.dim), nn.Linear(c.dim, c.decoder_dim))
        E, M = c.decoder_dim, c.grid**2
        self.patch_in = nn.Linear(c.patch**2, E)  # a patch's pixels to a token vector
        self.time = nn.Sequential(nn.Linear(c.time_dim, E), nn.SiLU(), nn.Linear(E, E))  # the noise level t to a vector added to every patch
        self.position = nn.Parameter(torch.zeros(1, M, E))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(DecoderBlock(E, c.decoder_heads, c.mlp_ratio) for _ in range(c.decoder_depth))
        self.norm = nn.LayerNorm(E)
        self.patch_out = nn.Linear(E, c.patch**2)  # a token vector to the velocity of its patch's pixels

    def train(self, mode: bool = True) -> MetaQueries:
        super().train(mode)
        self.reader.eval()  # frozen: no dropout in the reader while the rest learns, so its states are those it reads with
        return self

    # ---- reading: the frozen reader's, unchanged

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.reader.codes(x)

    def logits(self, ids: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        return self.reader.logits(ids, x)

    def log_likelihoods(self, ids: torch.Tensor, target: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        return self.reader.log_likelihoods(ids, target, x)

    def sequence_losses(self, ids: torch.Tensor, target: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        return self.reader.sequence_losses(ids, target, x)

    def rebuilt(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, P) as the drawing side gives them back, in [0, 1]: the decoder draws pixels."""
        return x.float() / (self.config.levels - 1)

    # ---- drawing

    # --8<-- [start:conditions]
    def conditions(self, prompts: torch.Tensor) -> torch.Tensor:
        """What the decoder reads for prompts (B,) (token ids: a digit's name or [NULL]), (B, N, E).

        The reader runs ``[BOS] prompt [BOI] q1..qN``, the queries in place of the image positions; its
        last states at the queries go through the connector. A batch holds at most 21 distinct prompts
        (20 names and [NULL]): the reader and the connector run once for each, the same numbers as once per example.
        """
        c = self.config
        device = self.queries.device
        distinct, index = prompts.unique(return_inverse=True)  # (U,), (B,)
        U = len(distinct)
        ids = torch.cat([generation_prompt(distinct), torch.full((U, c.queries), TOKEN_ID[PAD])], 1).to(device)  # [BOS] prompt [BOI] and N places
        h = with_image(self.reader.embed(ids), ids, self.queries.expand(U, -1, -1))  # the queries' vectors in the N places
        states = self.reader.states(h, ids)[:, 3:]  # (U, N, D): the frozen reader's last states at the queries
        for block in self.connector:
            states = block(states)[0]  # the queries see each other: bidirectional
        return self.to_decoder(states)[index.to(device)]

    # --8<-- [end:conditions]

    # --8<-- [start:decoder]
    def velocity(self, conditions: torch.Tensor, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v_θ: the velocity (B, M, Q) of noisy patches p (B, M, Q) at noise level t (B,), reading ``conditions`` (B, N, E)."""
        time = self.time(timestep_embedding(TIME_SCALE * t, self.config.time_dim))  # (B, E)
        h = self.patch_in(p) + time[:, None] + self.position
        for block in self.blocks:
            h = block(h, conditions)
        return self.patch_out(self.norm(h))

    def as_patches(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, P) of pixel levels to patches (B, M, Q) of values in [-1, 1], the data end (t = 0) of the flow."""
        return patches(x.float() / (self.config.levels - 1) * 2 - 1, self.config.patch)

    def generation_losses(self, prompts: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The flow-matching loss of each image (B, P) after its prompt (B,), (B,): the squared error of the velocity at one random t."""
        x0 = self.as_patches(x)
        t, noise, x_t = training_example(x0, generator)  # t ~ U(0, 1), ε ~ N(0, I), x_t = (1 - t)·x0 + t·ε
        error = (self.velocity(self.conditions(prompts), x_t, t) - velocity_target(x0, noise)) ** 2  # target ε - x0
        return error.mean((1, 2))

    def forward(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """The flow-matching loss alone: every example is a drawing, its prompt the digit's name in a random language or, for a share, [NULL]."""
        x, y = batch
        langs = torch.randint(len(LANGUAGES), (len(x),))
        dropped = torch.rand(len(x)) < self.config.label_dropout  # label dropout, for classifier-free guidance
        prompts = prompt_ids(y, langs).masked_fill(dropped, TOKEN_ID[NULL])
        return self.generation_losses(prompts, x).mean(), {}

    # --8<-- [end:decoder]

    @torch.no_grad()
    def generate_images(
        self, prompts: list[str], guidance: float | None = None, generator: torch.Generator | None = None, steps: int | None = None
    ) -> torch.Tensor:
        """One image per prompt (a digit's name, or [NULL]), (B, P) in [0, 1]: the conditions once, then ``steps`` Euler steps of the decoder from noise.

        Each step runs the decoder twice, reading the prompt's conditions and [NULL]'s, and moves along v_null + s (v_prompt - v_null).
        """
        c = self.config
        s = c.guidance if guidance is None else guidance
        steps = c.sample_steps if steps is None else steps
        check_count(steps, "steps", MAX_STEPS)
        B = len(prompts)
        conditions = self.conditions(token_ids([*prompts, *[NULL] * B]))  # (2B, N, E): with and without the prompt

        def guided_velocity(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            v = self.velocity(conditions, p.repeat(2, 1, 1), t.repeat(2))  # (2B, M, Q)
            return guided_logits(v[:B], v[B:], s)  # v_null + s·(v_prompt - v_null)

        noise = torch.randn((B, c.grid**2, c.patch**2), generator=generator).to(self.queries.device)  # t = 1
        return ((unpatched(euler_sample(guided_velocity, noise, steps), c.patch) + 1) / 2).clamp(0, 1)
