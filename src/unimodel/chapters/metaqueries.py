"""Figures of the MetaQueries page: the architecture as a block diagram.

MetaQueries (arXiv 2504.06256): learnable queries are appended to the
prompt of a frozen multimodal LLM; the LLM's outputs at the query positions
go through a connector into a diffusion decoder, and the only training
signal is the decoder's diffusion loss. Dashed boxes are frozen.
"""

from __future__ import annotations

from unimodel.figures import diagram
from unimodel.figures.diagram import Arrow, Box
from unimodel.figures.registry import figure
from unimodel.figures.style import PALETTE, tr


@figure("metaqueries/architecture")
def architecture(lang: str):
    """Prompt and learnable queries into the frozen MLLM; its query outputs through the connector into the diffusion decoder."""
    t = lambda zh, en: tr(lang, zh, en)  # noqa: E731
    boxes = [
        Box("prompt", t("文本提示\n（或图 + 文）", "prompt\n(text, or image + text)"), 1.5, 3.6, width=2.6, height=0.9, color=PALETTE[7]),
        Box("queries", t("可学习查询\n$q_1,\\dots,q_N$", "learnable queries\n$q_1,\\dots,q_N$"), 1.5, 1.6, width=2.6, height=0.9, color=PALETTE[1]),
        Box("mllm", t("多模态大模型 MLLM\n（冻结）", "multimodal LLM\n(frozen)"), 5.3, 2.6, width=2.6, height=2.6, color=PALETTE[0], frozen=True),
        Box("answer", t("文字回答\n（理解能力不变）", "text answer\n(understanding unchanged)"), 5.3, 5.0, width=2.9, height=0.9, color=PALETTE[7]),
        Box("connector", t("连接器", "connector"), 9.6, 2.6, width=2.0, height=0.9, color=PALETTE[2]),
        Box("decoder", t("扩散解码器", "diffusion decoder"), 13.6, 2.6, width=2.4, height=0.9, color=PALETTE[3]),
        Box("image", t("图像", "image"), 13.6, 0.7, width=1.6, height=0.7, color=PALETTE[7]),
        Box("loss", t("扩散损失\n（唯一的训练信号）", "diffusion loss\n(the only training signal)"), 13.6, 4.6, width=3.0, height=0.9, color=PALETTE[4]),
    ]
    arrows = [
        Arrow("prompt", "mllm"),
        Arrow("queries", "mllm"),
        Arrow("mllm", "answer"),
        Arrow("mllm", "connector", t("查询位置\n的输出", "outputs at\nquery slots")),
        Arrow("connector", "decoder", t("条件 c", "condition c")),
        Arrow("decoder", "image", t("去噪采样", "denoising")),
        Arrow("decoder", "loss"),
    ]
    title = t("MetaQueries：可学习查询读冻结的 MLLM（虚线框冻结）", "MetaQueries: learnable queries read a frozen MLLM (dashed = frozen)")
    return diagram.draw(boxes, arrows, width=15.4, height=5.8, title=title)
