"""Figures of the Janus / Janus-Pro page (arXiv 2410.13848 / 2501.17811).

``janus-pro/architecture`` sets Chameleon's single VQ tokenizer (arXiv
2405.09818), which both reads and writes images, beside Janus's two visual
encoders, SigLIP for understanding and a VQ tokenizer for generation, feeding
one autoregressive Transformer. ``janus-pro/cfg`` shows what
classifier-free guidance does to the next image token's distribution, on a
made-up example of eight codebook entries, with ``guided_logits`` of the
unified model (``unimodel.models.unified``).
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import pyplot as plt

from unimodel.figures.diagram import Arrow, Box, draw
from unimodel.figures.registry import figure
from unimodel.figures.style import PALETTE, tr
from unimodel.models.unified import guided_logits

# a made-up next-token example: logits over 8 codebook entries with the prompt and without it
CONDITIONAL = torch.tensor([1.2, 1.6, 0.9, 0.3, 0.8, -0.2, 0.0, -0.6])
UNCONDITIONAL = torch.tensor([0.4, 1.7, 0.6, 0.3, 0.9, 0.1, -0.1, -0.4])
SCALES = (0.0, 1.0, 3.0, 5.0)  # guidance scales shown; 0 is the unconditional model, 1 the conditional one


@figure("janus-pro/architecture")
def architecture(lang: str):
    """Left: Chameleon, one VQ tokenizer for everything. Right: Janus, SigLIP to understand and VQ to generate, one Transformer."""
    und, gen, text, core, head = PALETTE[0], PALETTE[1], PALETTE[7], PALETTE[4], PALETTE[2]
    boxes = [
        # Chameleon
        Box("c_img", tr(lang, "图像（看或画）", "image (read or drawn)"), 1.5, 0.6, width=2.7, color=gen),
        Box("c_txt", tr(lang, "文本", "text"), 4.2, 0.6, width=2.0, color=text),
        Box("c_vq", tr(lang, "VQ 分词器\n（唯一的图像编码器）", "VQ tokenizer\n(the only image encoder)"), 1.5, 2.0, width=2.8, height=0.9, color=gen),
        Box("c_bpe", tr(lang, "文本分词器", "text tokenizer"), 4.2, 2.0, width=2.0, color=text),
        Box(
            "c_tf",
            tr(lang, "一个自回归 Transformer\n共享词表：文字 + 图像 token", "one autoregressive Transformer\nshared vocabulary: text + image tokens"),
            2.6,
            3.6,
            width=4.8,
            height=0.9,
            color=core,
        ),
        Box(
            "c_out",
            tr(lang, "下一个 token（文字或图像）\n图像 token → VQ 解码器", "next token (text or image)\nimage tokens → VQ decoder"),
            2.6,
            5.2,
            width=4.8,
            height=0.9,
            color=head,
        ),
        # Janus
        Box("j_und", tr(lang, "要看懂的图像", "image to understand"), 7.2, 0.6, width=2.9, color=und),
        Box("j_txt", tr(lang, "文本", "text"), 10.0, 0.6, width=1.9, color=text),
        Box("j_gen", tr(lang, "要画的图像", "image to generate"), 12.7, 0.6, width=2.8, color=gen),
        Box("j_sig", tr(lang, "SigLIP 编码器\n+ 理解适配器", "SigLIP encoder\n+ understanding adaptor"), 7.2, 2.0, width=2.9, height=0.9, color=und),
        Box("j_bpe", tr(lang, "文本分词器", "text tokenizer"), 10.0, 2.0, width=1.9, color=text),
        Box("j_vq", tr(lang, "VQ 分词器\n+ 生成适配器", "VQ tokenizer\n+ generation adaptor"), 12.7, 2.0, width=2.8, height=0.9, color=gen),
        Box("j_tf", tr(lang, "一个自回归 Transformer", "one autoregressive Transformer"), 10.0, 3.6, width=8.3, height=0.9, color=core),
        Box("j_lm", tr(lang, "文本头\n下一个文字 token", "text head\nnext text token"), 8.0, 5.2, width=3.0, height=0.9, color=head),
        Box(
            "j_img", tr(lang, "图像头\n下一个图像 token → VQ 解码器", "image head\nnext image token → VQ decoder"), 12.2, 5.2, width=3.8, height=0.9, color=head
        ),
    ]
    arrows = [
        Arrow("c_img", "c_vq"),
        Arrow("c_txt", "c_bpe"),
        Arrow("c_vq", "c_tf"),
        Arrow("c_bpe", "c_tf"),
        Arrow("c_tf", "c_out"),
        Arrow("j_und", "j_sig"),
        Arrow("j_txt", "j_bpe"),
        Arrow("j_gen", "j_vq"),
        Arrow("j_sig", "j_tf"),
        Arrow("j_bpe", "j_tf"),
        Arrow("j_vq", "j_tf"),
        Arrow("j_tf", "j_lm"),
        Arrow("j_tf", "j_img"),
    ]
    fig = draw(boxes, arrows, width=14.3, height=6.5, scale=0.7)
    ax = fig.axes[0]
    ax.text(
        2.6,
        6.3,
        tr(lang, "Chameleon：一个图像分词器，既看也画", "Chameleon: one image tokenizer to read and to draw"),
        ha="center",
        va="center",
        fontsize=10,
        weight="bold",
    )
    ax.text(
        10.0,
        6.3,
        tr(lang, "Janus：看和画用两个编码器，共用一个 Transformer", "Janus: two encoders to read and to draw, one Transformer"),
        ha="center",
        va="center",
        fontsize=10,
        weight="bold",
    )
    ax.axvline(5.45, ymin=0.02, ymax=0.92, color="#cccccc", lw=1, ls="--")
    return fig


@figure("janus-pro/cfg")
def cfg(lang: str):
    """The next image token's distribution, softmax of the guided logits, at several guidance scales (made-up logits)."""
    fig, axes = plt.subplots(1, len(SCALES), figsize=(10, 2.8), sharey=True)
    tokens = np.arange(len(CONDITIONAL))
    favoured = int(torch.argmax(CONDITIONAL - UNCONDITIONAL))  # the token the prompt raises most
    for ax, scale in zip(axes, SCALES):
        p = torch.softmax(guided_logits(CONDITIONAL, UNCONDITIONAL, scale), dim=0).numpy()
        colors = [PALETTE[3] if i == favoured else PALETTE[0] for i in tokens]
        ax.bar(tokens, p, color=colors)
        name = {0.0: tr(lang, "（无条件）", " (unconditional)"), 1.0: tr(lang, "（条件）", " (conditional)")}.get(scale, "")
        ax.set_title(f"s = {scale:g}{name}", fontsize=9.5)
        ax.set_xticks(tokens)
        ax.set_xticklabels([str(i) for i in tokens], fontsize=8)
        ax.set_xlabel(tr(lang, "码本里的第几项", "codebook entry"), fontsize=8.5)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel(tr(lang, "下一个图像 token 的概率", "probability of the\nnext image token"), fontsize=8.5)
    fig.tight_layout()
    return fig
