"""Figures of the UniWorld-V1 page: the architecture as a block diagram.

UniWorld-V1 (arXiv 2506.03147; code PKU-YuanGroup/UniWorld-V1): a frozen
Qwen2.5-VL-7B reads the instruction (and the input image, when there is
one), a frozen SigLIP2 encoder (so400m, patch 16, 512 px) encodes that image
at high resolution; two MLPs, one for each, map their features into the
token sequence that conditions the FLUX.1-dev diffusion transformer in place
of its T5 text tokens (the training configs drop T5 always). The DiT is
trained: stage 1 trains only the Qwen MLP with FLUX frozen, stage 2 also the
SigLIP MLP and, in every FLUX block, the attention projections, QK norms and
modulation (of the image branch in the double-stream blocks; the feed-forward
layers stay frozen). Dashed boxes are frozen.
"""

from __future__ import annotations

from unimodel.figures import diagram
from unimodel.figures.diagram import Arrow, Box
from unimodel.figures.registry import figure
from unimodel.figures.style import PALETTE, tr


@figure("uniworld/architecture")
def architecture(lang: str):
    """Instruction and input image into frozen Qwen2.5-VL and SigLIP2; one MLP each carries their features to the FLUX DiT, which is trained."""
    t = lambda zh, en: tr(lang, zh, en)  # noqa: E731
    boxes = [
        Box("text", t("指令（文字）", "instruction (text)"), 1.5, 4.3, width=2.6, height=0.8, color=PALETTE[7]),
        Box("image", t("输入图\n（编辑等任务才有）", "input image\n(editing and similar tasks)"), 1.5, 1.9, width=2.6, height=0.9, color=PALETTE[7]),
        Box("vlm", t("Qwen2.5-VL-7B\n（冻结）", "Qwen2.5-VL-7B\n(frozen)"), 5.4, 4.3, width=2.6, height=1.1, color=PALETTE[0], frozen=True),
        Box("siglip", t("SigLIP2，512 像素\n（冻结）", "SigLIP2, 512 px\n(frozen)"), 5.4, 1.9, width=2.6, height=0.9, color=PALETTE[0], frozen=True),
        Box("answer", t("文字回答（理解）", "text answer (understanding)"), 5.4, 6.0, width=3.0, height=0.7, color=PALETTE[7]),
        Box("mlp", "MLP", 9.0, 4.3, width=1.4, height=0.8, color=PALETTE[2]),
        Box("mlp_siglip", "MLP", 9.0, 1.9, width=1.4, height=0.8, color=PALETTE[2]),
        Box("dit", t("FLUX DiT\n（训练）", "FLUX DiT\n(trained)"), 13.0, 3.1, width=2.4, height=1.1, color=PALETTE[3]),
        Box("noisy", t("带噪潜变量 $x_t$，时间 $t$", "noisy latent $x_t$, time $t$"), 13.0, 0.9, width=3.0, height=0.7, color=PALETTE[7]),
        Box(
            "velocity",
            t("预测的速度 $v_\\theta$\n（flow matching 损失）", "predicted velocity $v_\\theta$\n(flow-matching loss)"),
            13.0,
            5.3,
            width=3.2,
            height=0.9,
            color=PALETTE[4],
        ),
    ]
    arrows = [
        Arrow("text", "vlm"),
        Arrow("image", "vlm"),
        Arrow("image", "siglip"),
        Arrow("vlm", "answer"),
        Arrow("vlm", "mlp", t("隐藏状态", "hidden\nstates")),
        Arrow("siglip", "mlp_siglip", t("图像特征", "image\nfeatures")),
        Arrow("mlp", "dit", t("条件 token", "condition\ntokens")),
        Arrow("mlp_siglip", "dit"),
        Arrow("noisy", "dit"),
        Arrow("dit", "velocity"),
    ]
    title = t(
        "UniWorld-V1：冻结的理解模型给 FLUX 提供条件（虚线框冻结；FLUX 自己的 T5/CLIP 文本编码器不用）",
        "UniWorld-V1: frozen understanding models condition FLUX (dashed = frozen; FLUX's own T5/CLIP text encoders unused)",
    )
    return diagram.draw(boxes, arrows, width=15.0, height=6.6, title=title)
