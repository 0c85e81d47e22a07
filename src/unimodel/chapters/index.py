"""The home page's map: the road the site walks, generation, then understanding, then unified models.

``index/road`` draws every chapter as a box in its part's column, in reading order, and the few
arrows along which a chapter hands something on to a later one: the VQ-VAE tokenizer and the
autoregressive drawing that the hands-on unified model is built from, the image encoder and the
loss that the understanding chapters pass along, BLIP's captioning, and the BLIP-2 bridge that
MetaQueries replaces. The cards under it show a figure of each chapter's own.
"""

from __future__ import annotations

from unimodel.figures import diagram
from unimodel.figures.diagram import Arrow, Box
from unimodel.figures.registry import figure
from unimodel.figures.style import PALETTE, tr

COLUMNS = (2.2, 7.6, 13.0)  # x of the parts: generation, understanding, unified models
PART_COLORS = (PALETTE[1], PALETTE[0], PALETTE[4])
# each part's chapters, top to bottom in the order of the navigation: (key, zh, en)
CHAPTERS = (
    (
        ("taxonomy", "生成模型分类", "A taxonomy of\ngenerative models"),
        ("vae", "VAE 与 VQ-VAE", "VAE and VQ-VAE"),
        ("gan", "GAN", "GAN"),
        ("diffusion", "扩散模型 DDPM", "Diffusion (DDPM)"),
        ("pixelcnn", "自回归 PixelCNN", "Autoregressive\n(PixelCNN)"),
        ("flow-matching", "流匹配", "Flow matching"),
    ),
    (
        ("vit", "视觉 Transformer ViT", "Vision Transformer\n(ViT)"),
        ("clip", "图文对比 CLIP", "CLIP: contrastive\nimage-text learning"),
        ("blip", "理解与描述 BLIP", "BLIP: understanding\nand captioning"),
    ),
    (
        ("unified", "统一模型综述", "Unified models:\nan overview"),
        ("unified-model", "动手：训练一个统一模型", "Hands-on: train\na unified model"),
        ("janus-pro", "Janus-Pro", "Janus-Pro"),
        ("metaqueries", "MetaQueries", "MetaQueries"),
        ("uniworld", "UniWorld-V1", "UniWorld-V1"),
        ("bagel", "BAGEL", "BAGEL"),
        ("wise", "WISE 基准", "The WISE benchmark"),
    ),
)
STARTS = (6.7, 5.9, 6.7)  # y of each part's first chapter: understanding starts lower, so that an arrow can pass over it
STEPS = (1.2, 1.35, 1.0)  # the distance between two chapters of a part


@figure("index/road")
def road(lang: str):
    """The three parts as columns of chapters, the road between them, and what later chapters take from earlier ones."""
    t = lambda zh, en: tr(lang, zh, en)  # noqa: E731
    parts = (t("一、生成", "1. Generation"), t("二、理解", "2. Understanding"), t("三、统一模型", "3. Unified models"))
    boxes = [Box(f"part{i}", name, x, 7.9, width=3.4, height=0.7, color=PART_COLORS[i]) for i, (x, name) in enumerate(zip(COLUMNS, parts, strict=True))]
    for i, (x, top, step, chapters) in enumerate(zip(COLUMNS, STARTS, STEPS, CHAPTERS, strict=True)):
        for row, (key, zh, en) in enumerate(chapters):
            color = PALETTE[2] if key == "unified-model" else PART_COLORS[i]
            boxes.append(Box(key, t(zh, en), x, top - row * step, width=3.4, height=0.75, color=color))
    arrows = [
        Arrow("part0", "part1"),
        Arrow("part1", "part2"),
        Arrow("vit", "clip", t("图像编码器", "image encoder")),
        Arrow("clip", "blip", t("ITC 损失", "the ITC loss")),
        Arrow("blip", "metaqueries", t("Q-Former\n→ 查询", "Q-Former\n→ queries")),
        Arrow("vae", "unified-model", t("VQ 分词器", "VQ tokenizer"), bend=-0.35),  # over the understanding part
        Arrow("pixelcnn", "unified-model", t("逐个 token 生成", "one token at a time"), bend=0.3),  # under it
        Arrow("blip", "unified-model", t("写描述", "captioning")),
        Arrow("flow-matching", "bagel", t("速度场", "velocity field")),  # under the understanding part
    ]
    title = t(
        "本站的路线：先生成，再理解，最后统一（绿色：动手训练的统一模型）",
        "The road of this site: generation, understanding, then both in one model (green: the one you train)",
    )
    return diagram.draw(boxes, arrows, width=15.2, height=8.5, title=title, scale=0.62)
