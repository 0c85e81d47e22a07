"""BLIP: the masks, causality of the decoder, cross-attention, the tokens, the three losses, the ablations, captions, ITM scores, a short training run, the CLI."""

from __future__ import annotations

import inspect
import json

import pytest
import torch
from torch.nn import functional as F

from unimodel.data import digits_splits
from unimodel.models import captions, clip
from unimodel.models.blip import (
    BLIP,
    CLS,
    CONTEXT,
    DEC,
    ENC,
    EOS,
    LANGUAGE_TOKEN,
    LENGTH,
    PAD,
    TOKEN_ID,
    VOCAB,
    BLIPConfig,
    _prefixed,
    causal_mask,
    decoder_prompt,
    generate,
    padding_mask,
    start,
)
from unimodel.models.captions import LANGUAGES, NAMES, TEMPLATES, caption, draw_captions, training_captions, words
from unimodel.models.layers import Attention
from unimodel.recipes.blip import (
    SPEC,
    caption_scores,
    closest_other_digit,
    evaluate,
    is_caption_of,
    itm_accuracy,
    itm_zero_shot_accuracy,
    matching_pairs,
    named_digits,
    train_defaults,
)
from unimodel.recipes.clip import retrieval_recall_at_1
from unimodel.runtime import set_seed
from unimodel.training import TrainConfig, fit

ROUND = {0, 6, 8, 9}
VARIANTS = [{}, {"itm": False, "lm": False}, {"lm": False}, {"itm": False}, {"hard_negatives": False}, {"itc": False, "itm": False, "hard_negatives": False}]


@pytest.fixture(scope="module")
def splits():
    return digits_splits()


def _model(seed=0, **config) -> BLIP:
    set_seed(seed)
    return BLIP(BLIPConfig(**{"dim": 16, "heads": 2, "image_depth": 1, "text_depth": 1, "embed_dim": 8, "dropout": 0.0, **config})).eval()


def _ids(*rows: list[str]) -> torch.Tensor:
    return torch.tensor([[TOKEN_ID[t] for t in row] for row in rows])


# ------------------------------------------------------------------ masks and attention


def test_padding_and_causal_masks_by_hand():
    ids = _ids(["the", "digit", EOS, PAD], ["seven", EOS, PAD, PAD])
    # bidirectional: every query sees every key that is not [PAD], the [PAD] queries too
    assert padding_mask(ids).tolist() == [
        [[True, True, True, False]] * 4,
        [[True, True, False, False]] * 4,
    ]
    # causal: keys 0..t, and still never a [PAD]
    assert causal_mask(ids).tolist() == [
        [[True, False, False, False], [True, True, False, False], [True, True, True, False], [True, True, True, False]],
        [[True, False, False, False], [True, True, False, False], [True, True, False, False], [True, True, False, False]],
    ]
    assert padding_mask(ids).dtype == causal_mask(ids).dtype == torch.bool


def test_attention_gives_masked_keys_exactly_zero_weight():
    torch.manual_seed(0)
    attention = Attention(8, 2, 0.0)
    ids = _ids(["the", "digit", EOS, PAD], ["seven", EOS, PAD, PAD])
    h = torch.randn(2, 4, 8)
    for mask in (causal_mask(ids), padding_mask(ids)):
        out, weights = attention(h, mask=mask)
        assert out.shape == (2, 4, 8) and weights.shape == (2, 2, 4, 4)
        hidden = ~mask[:, None].expand_as(weights)
        assert (weights[hidden] == 0).all()
        assert (weights[~hidden] > 0).all()
        assert torch.allclose(weights.sum(dim=-1), torch.ones(2, 2, 4), atol=1e-6)
    # a mask that lets every query see only key 2: the output is out(value of key 2) for every query
    only = torch.zeros(1, 4, 4, dtype=torch.bool)
    only[..., 2] = True  # (1, T, S) broadcasts over the batch
    out, weights = attention(h, mask=only)
    assert (weights[..., 2] == 1).all()
    value = attention.key_value(h)[..., 8:]  # (B, T, D): the values are the second half of key_value
    expected = attention.out(value[:, 2:3]).expand(-1, 4, -1)
    assert torch.allclose(out, expected, atol=1e-6)


def test_cross_attention_weighs_the_context_without_a_mask():
    torch.manual_seed(0)
    attention = Attention(8, 4, 0.0)
    out, weights = attention(torch.randn(3, 4, 8), context=torch.randn(3, 5, 8))
    assert out.shape == (3, 4, 8) and weights.shape == (3, 4, 4, 5)
    assert (weights > 0).all() and torch.allclose(weights.sum(dim=-1), torch.ones(3, 4, 4), atol=1e-6)


# ------------------------------------------------------------------ the decoder is causal, the encoders are not


def _decoder_ids() -> torch.Tensor:
    prompt = decoder_prompt(["en", "zh", "en"])
    ids = _prefixed(["seven , odd and open", "奇数 ， 开口 ： 七", "the digit one"], prompt)  # (3, LENGTH), the last one padded
    assert ids.shape == (3, LENGTH) and (ids[2] == TOKEN_ID[PAD]).any()
    return ids


def test_changing_later_tokens_leaves_the_earlier_logits_alone(splits):
    model = _model(text_depth=2)
    image = model.image_tokens(splits.train.x[:3])
    ids = _decoder_ids()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        logits, maps = model.caption_logits(image, ids)
        for t in range(LENGTH - 1):
            changed = ids.clone()
            changed[:, t + 1 :] = torch.randint(1, len(VOCAB), (3, LENGTH - t - 1), generator=g)  # never [PAD]: every key is seen
            other, other_maps = model.caption_logits(image, changed)
            assert torch.allclose(logits[:, : t + 1], other[:, : t + 1], atol=1e-6), t
            for a, b in zip(maps, other_maps, strict=True):  # the cross-attention of the earlier queries too
                assert torch.allclose(a[:, :, : t + 1], b[:, :, : t + 1], atol=1e-6), t
            assert not torch.allclose(logits[:, t + 1 :], other[:, t + 1 :], atol=1e-4), t  # the later ones do change


def test_the_logits_at_t_have_no_gradient_from_later_embeddings(splits):
    model = _model(text_depth=2)
    image = model.image_tokens(splits.train.x[:2]).detach()
    ids = torch.randint(1, len(VOCAB), (2, LENGTH), generator=torch.Generator().manual_seed(1))  # no [PAD] anywhere
    embedded = {}

    def keep(module, inputs, output):
        output.retain_grad()
        embedded["h"] = output

    handle = model.text.embed.register_forward_hook(keep)
    try:
        for t in range(LENGTH):
            model.zero_grad()
            logits, _ = model.caption_logits(image, ids)
            logits[:, t].sum().backward()
            grad = embedded["h"].grad  # (B, T, D): d logits[:, t] / d embedding of each token
            assert torch.equal(grad[:, t + 1 :], torch.zeros_like(grad[:, t + 1 :])), t  # exactly zero for every later token
            assert (grad[:, : t + 1].abs().sum(dim=-1) > 0).all(), t  # and not for the earlier ones, itself included
    finally:
        handle.remove()


def test_the_grounded_and_unimodal_encoders_are_bidirectional(splits):
    model = _model(text_depth=2)
    image = model.image_tokens(splits.train.x[:1])
    with torch.no_grad():
        # [ENC] reads the whole caption: changing only its last word changes the match scores
        seven, eight = model.match_logits(image.expand(2, -1, -1), ["the digit seven", "the digit eight"])
        assert not torch.allclose(seven, eight, atol=1e-5)
        # the same in the text Transformer directly, at the last place before the [PAD]s and at the very last place
        ids = _prefixed(["the digit seven"], start(ENC))
        h, _ = model.text(ids, image=image)
        for place in (3, ids.shape[1] - 1):
            changed = ids.clone()
            changed[0, place] = TOKEN_ID["nine"]
            assert not torch.allclose(h[:, 0], model.text(changed, image=image)[0][:, 0], atol=1e-5), place
        # [CLS] of the unimodal encoder too
        a, b = model.embed_text(["the digit seven", "the digit eight"])
        assert not torch.allclose(a, b, atol=1e-5)


def test_a_pad_reaches_no_other_token(splits):
    model = _model(text_depth=2)
    image = model.image_tokens(splits.train.x[:1])
    ids = _prefixed(["the digit seven"], start(ENC))
    # a [PAD] key is hidden from every query, so what a [PAD] is embedded as cannot reach the other tokens
    with torch.no_grad():
        h, _ = model.text(ids, image=image)
        model.text.embed.weight[TOKEN_ID[PAD]] += 1.0  # a different [PAD] embedding
        again, _ = model.text(ids, image=image)
    assert torch.allclose(h[:, :5], again[:, :5], atol=1e-6)  # [ENC], the caption and [EOS] are unchanged


def test_the_encoder_modes_start_with_their_token_and_are_read_at_it(splits):
    model = _model(text_depth=2)
    x = splits.train.x[:2]
    captions = ["the digit seven", "七是奇数"]
    with torch.no_grad():
        image = model.image_tokens(x)
        assert image.shape == (2, 5, 16)  # [CLS] and 4 patches
        at_enc, _ = model.text(_prefixed(captions, start(ENC)), image=image)
        at_cls, _ = model.text(_prefixed(captions, start(CLS)))
        match = model.match_logits(image, captions)
        assert match.shape == (2, 2) and torch.allclose(match, model.itm_head(at_enc[:, 0]), atol=1e-6)
        assert not torch.allclose(match, model.itm_head(at_enc[:, 1]), atol=1e-4)
        text = model.embed_text(captions)
        assert torch.allclose(text, F.normalize(model.text_projection(at_cls[:, 0]), dim=1), atol=1e-6)
        images = model.embed_images(x)
        assert torch.allclose(images, F.normalize(model.image.head(image[:, 0]), dim=1), atol=1e-6)
        assert torch.allclose(text.norm(dim=1), torch.ones(2)) and torch.allclose(images.norm(dim=1), torch.ones(2))
        # [CLS] and [ENC] are different tokens: the same caption read in the other mode gives another vector
        other, _ = model.text(_prefixed(captions, start(ENC)))
        assert not torch.allclose(at_cls[:, 0], other[:, 0], atol=1e-4)


# ------------------------------------------------------------------ cross-attention


def test_captions_depend_on_the_image_and_the_text_embedding_does_not(splits):
    model = _model(text_depth=2)
    ids = _decoder_ids()
    with torch.no_grad():
        a, maps = model.caption_logits(model.image_tokens(splits.train.x[:3]), ids)
        b, _ = model.caption_logits(model.image_tokens(splits.train.x[3:6]), ids)
    assert (a - b).abs().max() > 1e-4  # another image, another caption
    with torch.no_grad():  # and caption b reads image b only
        c, _ = model.caption_logits(model.image_tokens(splits.train.x[[0, 4, 2]]), ids)
    assert torch.allclose(a[[0, 2]], c[[0, 2]], atol=1e-6) and (a[1] - c[1]).abs().max() > 1e-4
    n_image = model.image.config.patches + 1  # patch 4: 4 patches and [CLS]
    assert len(maps) == 2 and all(m.shape == (3, 2, LENGTH, n_image) for m in maps)  # (B, heads, T, N + 1) per block
    assert all(torch.allclose(m.sum(dim=-1), torch.ones(3, 2, LENGTH), atol=1e-6) for m in maps)
    # the unimodal text encoder takes no image, and its embedding does not move when the cross-attention does
    assert list(inspect.signature(model.embed_text).parameters) == ["captions"]
    captions = ["the digit seven", "七是奇数"]
    with torch.no_grad():
        before = model.embed_text(captions)
        assert model.text(_prefixed(captions, start(CLS)))[1] == []  # no cross-attention maps without an image
        for block in model.text.blocks:
            for p in block.cross_attention.parameters():
                p.add_(torch.randn_like(p))
        assert torch.allclose(model.embed_text(captions), before, atol=1e-6)
        d, _ = model.caption_logits(model.image_tokens(splits.train.x[:3]), ids)
    assert not torch.allclose(a, d, atol=1e-4)  # while the decoder's scores do


# ------------------------------------------------------------------ tokens


def test_the_vocabulary_extends_clips_and_keeps_its_ids():
    assert VOCAB[: len(clip.VOCAB)] == clip.VOCAB
    assert all(TOKEN_ID[word] == i for word, i in clip.TOKEN_ID.items())
    assert VOCAB[len(clip.VOCAB) :] == (CLS, ENC, DEC, "[EN]", "[ZH]")
    assert len(set(VOCAB)) == len(VOCAB) and LANGUAGE_TOKEN == {"en": "[EN]", "zh": "[ZH]"}
    assert LENGTH == CONTEXT + 2 and TOKEN_ID[PAD] == 0 and TOKEN_ID[EOS] == 1


def test_prefixes_come_first_and_the_caption_ends_with_eos_and_pads():
    assert start(CLS).tolist() == [[TOKEN_ID[CLS]]] and start(ENC).tolist() == [[TOKEN_ID[ENC]]]
    assert decoder_prompt(["en", "zh"]).tolist() == [[TOKEN_ID[DEC], TOKEN_ID["[EN]"]], [TOKEN_ID[DEC], TOKEN_ID["[ZH]"]]]
    ids = _prefixed(["the digit seven", "七是奇数"], start(CLS))
    assert ids.shape == (2, 1 + CONTEXT)
    pads = [PAD] * (CONTEXT - 4)
    assert [[VOCAB[i] for i in row] for row in ids.tolist()] == [
        [CLS, "the", "digit", "seven", EOS, *pads],
        [CLS, "七", "是", "奇", "数", EOS, *pads[1:]],
    ]
    ids = _prefixed(["the digit seven", "七是奇数"], decoder_prompt(["en", "zh"]))
    assert ids.shape == (2, LENGTH)
    assert [VOCAB[i] for i in ids[0].tolist()] == [DEC, "[EN]", "the", "digit", "seven", EOS, *pads]
    assert [VOCAB[i] for i in ids[1].tolist()[:7]] == [DEC, "[ZH]", "七", "是", "奇", "数", EOS]
    # the longest caption fills every place: [DEC], the language, 7 tokens and [EOS]
    longest = _prefixed(["奇数 ， 开口 ： 七"], decoder_prompt(["zh"]))
    assert longest[0, -1].item() == TOKEN_ID[EOS] and (longest != TOKEN_ID[PAD]).all()


# ------------------------------------------------------------------ the LM loss


def _lm_by_hand(model: BLIP, image: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Mean of -log p(next token) over the places whose next token is a caption token or its [EOS]."""
    logits, _ = model.caption_logits(image, ids[:, :-1])
    terms = []
    for b, row in enumerate(ids.tolist()):
        end = row.index(TOKEN_ID[EOS])
        for place in range(1, end):  # place 1 is the language token, which predicts the first word; the last one predicts [EOS]
            terms.append(-F.log_softmax(logits[b, place], dim=-1)[row[place + 1]])
    return torch.stack(terms).mean()


def test_lm_loss_is_the_cross_entropy_of_the_caption_and_its_eos(splits):
    model = _model(text_depth=2)
    captions, langs = ["the digit seven", "七是奇数", "seven , odd and open"], ["en", "zh", "en"]
    image = model.image_tokens(splits.train.x[:3])
    ids = _prefixed(captions, decoder_prompt(langs))
    with torch.no_grad():
        loss = model.lm_loss(image, captions, langs)
        assert loss.item() == pytest.approx(_lm_by_hand(model, image, ids).item(), rel=1e-5)
        # what follows [EOS] cannot change it: fill the [PAD]s with other tokens and compute by hand again
        changed = ids.clone()
        after = torch.arange(LENGTH)[None] > (ids == TOKEN_ID[EOS]).long().argmax(dim=1, keepdim=True)
        changed[after] = torch.randint(2, len(VOCAB), (int(after.sum()),), generator=torch.Generator().manual_seed(0))
        assert loss.item() == pytest.approx(_lm_by_hand(model, image, changed).item(), rel=1e-5)


# ------------------------------------------------------------------ the ITM loss and its negatives


def _spy(model: BLIP, monkeypatch) -> list:
    calls = []
    real = model.match_logits

    def match_logits(image, captions):
        out = real(image, captions)
        calls.append((image, list(captions), out))
        return out

    monkeypatch.setattr(model, "match_logits", match_logits)
    return calls


def _which(rows: torch.Tensor, image: torch.Tensor) -> list[int]:
    """The index in ``image`` of every row of ``rows``."""
    found = []
    for row in rows:
        hits = [i for i in range(len(image)) if torch.equal(row, image[i])]
        assert len(hits) == 1
        found.append(hits[0])
    return found


def _digit(text: str) -> int:
    (digit,) = named_digits(words(text), "en")
    return digit


def _itm_pairs(model, image, y, captions, similarity, monkeypatch):
    calls = _spy(model, monkeypatch)
    with torch.no_grad():
        loss = model.itm_loss(image, y, captions, similarity)
    ((pair_images, pair_texts, logits),) = calls
    target = torch.tensor([1] * len(y) + [0] * (len(pair_texts) - len(y)))
    assert loss.item() == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-6)
    return _which(pair_images, image), pair_texts


def test_itm_pairs_are_the_positives_then_wrong_captions_then_wrong_images(splits, monkeypatch):
    model = _model()
    y = torch.tensor([0, 1, 2, 3, 3, 1, 7])
    image = model.image_tokens(splits.train.x[:7])
    captions = draw_captions(y, "en", torch.Generator().manual_seed(0))
    B = len(y)
    seen_captions, seen_images = set(), set()
    for seed in range(20):  # uniform negatives
        torch.manual_seed(seed)
        images, texts = _itm_pairs(model, image, y, captions, None, monkeypatch)
        monkeypatch.undo()
        assert len(images) == len(texts) == 3 * B
        assert images[:B] == list(range(B)) and texts[:B] == captions  # the B positives first
        assert images[B : 2 * B] == list(range(B))  # then every image with a wrong caption
        assert all(_digit(text) != y[i] for i, text in zip(images[B : 2 * B], texts[B : 2 * B], strict=True))
        assert texts[2 * B :] == captions  # then every caption with a wrong image
        assert all(y[j] != _digit(text) for j, text in zip(images[2 * B :], texts[2 * B :], strict=True))
        seen_captions |= {(i, text) for i, text in zip(images[B : 2 * B], texts[B : 2 * B], strict=True)}
        seen_images |= {(j, i) for i, j in enumerate(images[2 * B :])}
    # uniform: over 20 draws image 0 is given captions of several other digits, and caption 0 several other images
    assert len({_digit(text) for i, text in seen_captions if i == 0}) >= 3
    assert len({j for j, i in seen_images if i == 0}) >= 3


def test_hard_negatives_follow_the_similarity(splits, monkeypatch):
    model = _model()
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    image = model.image_tokens(splits.train.x[:6])
    captions = [caption(d, "en", TEMPLATES["en"][0]) for d in y.tolist()]
    pick = [1, 2, 3, 4, 5, 0]  # the one wrong caption each image finds most alike (a permutation, not its own inverse)
    similarity = torch.zeros(6, 6)
    similarity[torch.arange(6), pick] = 1e4
    images, texts = _itm_pairs(model, image, y, captions, similarity, monkeypatch)
    assert texts[6:12] == [captions[j] for j in pick]  # image i with caption pick[i]
    # caption i with the image whose similarity to it is the largest: image j with pick[j] == i, that is i - 1
    assert images[12:] == [5, 0, 1, 2, 3, 4]


def test_hard_negatives_never_pick_a_caption_of_the_same_digit(splits, monkeypatch):
    model = _model()
    y = torch.tensor([4, 4, 1, 1])
    image = model.image_tokens(splits.train.x[:4])
    captions = [
        caption(4, "en", TEMPLATES["en"][0]),
        caption(4, "en", TEMPLATES["en"][1]),
        caption(1, "en", TEMPLATES["en"][0]),
        caption(1, "en", TEMPLATES["en"][1]),
    ]
    similarity = torch.zeros(4, 4)
    similarity[0, 1] = similarity[1, 0] = similarity[2, 3] = similarity[3, 2] = 1e4  # the same digit: huge, but no negative
    similarity[0, 3] = similarity[1, 2] = similarity[2, 1] = similarity[3, 0] = 50.0  # then these
    for seed in range(5):
        torch.manual_seed(seed)
        images, texts = _itm_pairs(model, image, y, captions, similarity, monkeypatch)
        monkeypatch.undo()
        assert texts[4:8] == [captions[3], captions[2], captions[1], captions[0]]
        assert images[8:] == [3, 2, 1, 0]


def test_a_batch_of_one_digit_has_only_positives(splits, monkeypatch):
    model = _model()
    y = torch.tensor([5, 5, 5])
    image = model.image_tokens(splits.train.x[:3])
    captions = draw_captions(y, "en", torch.Generator().manual_seed(0))
    for similarity in (None, torch.randn(3, 3)):
        images, texts = _itm_pairs(model, image, y, captions, similarity, monkeypatch)
        monkeypatch.undo()
        assert images == [0, 1, 2] and texts == captions


# ------------------------------------------------------------------ the config and the ablations


@pytest.mark.parametrize(
    "change",
    [
        {"itc": False, "itm": False, "lm": False},
        {"itc": False},  # ITM with hard negatives needs ITC's similarity
        {"itc": False, "lm": False},
        {"patch": 3},
        {"dropout": 1.0},
        {"heads": 3},
        {"text_depth": 0},
        {"embed_dim": 0},
        {"init_temperature": 0.0},
        {"max_scale": 2.0},
    ],
)
def test_the_config_rejects_what_it_cannot_build(change):
    with pytest.raises(ValueError):
        BLIPConfig(**change)


def test_the_config_accepts_itm_without_itc_when_negatives_are_uniform():
    BLIPConfig(itc=False, hard_negatives=False)
    BLIPConfig(itc=False, itm=False)  # hard_negatives means nothing without ITM
    BLIPConfig(itc=True, itm=False, lm=False)


def test_only_the_parts_the_losses_use_are_built():
    def parts(model):
        block = model.text.blocks[0]
        names = {"text_projection", "log_scale", "itm_head", "lm_head"}
        return {n for n in names if hasattr(model, n)} | {
            n for n in ("encoder_attention", "decoder_attention", "cross_attention", "norm_cross") if hasattr(block, n)
        }

    everything = {"text_projection", "log_scale", "itm_head", "lm_head", "encoder_attention", "decoder_attention", "cross_attention", "norm_cross"}
    assert parts(_model()) == everything
    assert parts(_model(lm=False)) == everything - {"lm_head", "decoder_attention"}
    assert parts(_model(itm=False)) == everything - {"itm_head"}
    assert parts(_model(itm=False, lm=False)) == {"text_projection", "log_scale", "encoder_attention"}
    assert parts(_model(itc=False, hard_negatives=False)) == everything - {"text_projection", "log_scale"}
    assert parts(_model(itc=False, itm=False)) == {"lm_head", "decoder_attention", "cross_attention", "norm_cross"}
    assert _model().itm_head.out_features == 2 and _model().lm_head.out_features == len(VOCAB)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={v[k]}" for k in v) or "all")
def test_forward_returns_the_enabled_losses(splits, variant):
    model = _model(**variant).train()
    torch.manual_seed(0)
    loss, metrics = model((splits.train.x[:16], splits.train.y[:16]))
    c = model.config
    names = {name for name, on in (("itc", c.itc), ("itm", c.itm), ("lm", c.lm)) if on}
    assert set(metrics) == {"loss"} | names
    assert loss.ndim == 0 and loss.requires_grad
    assert metrics["loss"] == pytest.approx(sum(metrics[n] for n in names), rel=1e-5)
    assert all(metrics[n] > 0 for n in names)
    loss.backward()
    assert model.text.embed.weight.grad is not None and model.image.embed.weight.grad is not None


def _what_the_losses_see(model, x, y, monkeypatch) -> dict:
    """One forward pass with ITM's and LM's inputs recorded: {"itm": (labels, captions, similarity), "lm": (captions, langs)}."""
    seen = {}
    itm_loss, lm_loss = model.itm_loss, model.lm_loss

    def spy_itm(image, labels, captions, similarity):
        seen["itm"] = (labels, captions, similarity)
        return itm_loss(image, labels, captions, similarity)

    def spy_lm(image, captions, langs):
        seen["lm"] = (captions, langs)
        return lm_loss(image, captions, langs)

    monkeypatch.setattr(model, "itm_loss", spy_itm)
    monkeypatch.setattr(model, "lm_loss", spy_lm)
    torch.manual_seed(1)
    model((x, y))
    monkeypatch.undo()
    return seen


def test_forward_gives_itm_the_itc_similarity_and_lm_the_caption_languages(splits, monkeypatch):
    x, y = splits.train.x[:16], splits.train.y[:16]
    for hard in (True, False):
        model = _model(hard_negatives=hard).train()
        seen = _what_the_losses_see(model, x, y, monkeypatch)
        labels, captions, similarity = seen["itm"]
        assert torch.equal(labels, y) and seen["lm"][0] == captions
        assert all(named_digits(words(text), lang) == {d} for text, lang, d in zip(captions, seen["lm"][1], y.tolist(), strict=True))
        assert seen["lm"][1] == ["en" if text.isascii() else "zh" for text in captions] and {"en", "zh"} <= set(seen["lm"][1])
        if not hard:
            assert similarity is None
            continue
        with torch.no_grad():  # the scaled cosine similarities ITC just used, (B, B)
            expected = model.scale() * model.embed_images(x) @ model.embed_text(captions).T
        assert similarity.shape == (16, 16) and torch.allclose(similarity, expected, atol=1e-4)


@pytest.mark.parametrize(
    "variant",
    [
        *[v for v in VARIANTS if v.get("itc", True)],
        {"itc": False, "itm": False, "hard_negatives": False},
        {"itc": False, "hard_negatives": False},
    ],
    ids=lambda v: ",".join(f"{k}={v[k]}" for k in v) or "all",
)
def test_every_built_parameter_gets_a_gradient(splits, variant):
    # "Only the parts the enabled losses use are built"; data-parallel training (DDP without find_unused_parameters) needs it
    model = _model(**variant).train()
    torch.manual_seed(0)
    loss, _ = model((splits.train.x[:16], splits.train.y[:16]))
    loss.backward()
    unused = [name for name, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert unused == []


# ------------------------------------------------------------------ captions


def test_generate_returns_a_caption_per_image_without_eos_or_pad(splits):
    model = _model()
    captions, maps = generate(model.train(), splits.test.x[:7], "en")
    assert model.training  # it puts the mode back
    assert len(captions) == 7
    for tokens in captions:
        assert 0 <= len(tokens) <= CONTEXT and all(t in TOKEN_ID for t in tokens)
        assert EOS not in tokens
    assert len(maps) == 1 and maps[0].shape[:2] == (7, 2) and maps[0].shape[-1] == 5


def _scripted(model: BLIP, script: list[list[str]], monkeypatch) -> list:
    """Make the decoder write ``script[b]`` for image b, whatever it is shown; the ids it is given are recorded."""
    given = []

    def caption_logits(image, ids):
        given.append(ids.clone())
        B, T = ids.shape
        logits = torch.zeros(B, T, len(VOCAB))
        for b in range(B):
            step = T - 2  # the tokens written so far
            token = script[b][step] if step < len(script[b]) else "one"  # it goes on after its script
            logits[b, -1, TOKEN_ID[token]] = 1.0
        return logits, []

    monkeypatch.setattr(model, "caption_logits", caption_logits)
    return given


def test_generate_stops_at_eos_pads_finished_captions_and_stops_at_the_longest(splits, monkeypatch):
    model = _model()
    script = [["the", "digit", "seven", EOS], ["seven", EOS, "two"], ["one"] * 12]  # the last never ends
    given = _scripted(model, script, monkeypatch)
    captions, _ = generate(model, splits.test.x[:3], "en")
    assert captions == [["the", "digit", "seven"], ["seven"], ["one"] * (LENGTH - 2)]
    final = given[-1]  # the complete sequences
    assert final.shape == (3, LENGTH) and final[:, 0].eq(TOKEN_ID[DEC]).all() and final[:, 1].eq(TOKEN_ID["[EN]"]).all()
    assert [VOCAB[i] for i in final[1].tolist()] == [DEC, "[EN]", "seven", EOS] + [PAD] * (LENGTH - 4)  # padded once done, whatever it writes
    # when every caption has its [EOS], it stops early: [DEC] [ZH] and three steps
    monkeypatch.undo()
    given = _scripted(model, [["七", EOS], ["数", "字", EOS]], monkeypatch)
    captions, _ = generate(model, splits.test.x[:2], "zh")
    assert captions == [["七"], ["数", "字"]]
    assert given[-1].shape == (2, 5) and given[-1][:, 1].eq(TOKEN_ID["[ZH]"]).all()


def test_generate_never_writes_a_special_token(splits, monkeypatch):
    # the decoder's favourite is [PAD], [CLS] or [ZH]: generate writes the best of the caption words and [EOS] instead;
    # with every other score 0, that is [EOS] (id 1, the first allowed), so each caption ends there
    model = _model()
    _scripted(model, [["seven", PAD, "two"], ["seven", "[CLS]", EOS], ["[ZH]", "one"]], monkeypatch)
    captions, _ = generate(model, splits.test.x[:3], "en")
    assert captions == [["seven"], ["seven"], []]


def test_is_caption_of_and_named_digits():
    assert is_caption_of(["the", "digit", "seven"], 7, "en")
    assert is_caption_of(words("seven , odd and open"), 7, "en")
    assert not is_caption_of(["the", "digit", "seven"], 1, "en")
    assert not is_caption_of(["the", "digit", "seven", "seven"], 7, "en")
    assert not is_caption_of(words("a handwritten seven"), 7, "en")  # a prompt, not a training caption
    assert not is_caption_of(["the", "digit", "seven"], 7, "zh")
    assert is_caption_of(words("七是奇数"), 7, "zh") and is_caption_of(["数", "字", "七"], 7, "zh")
    for lang in LANGUAGES:
        for d in range(10):
            assert all(is_caption_of(words(text), d, lang) for text in training_captions(d, lang))
            assert all(named_digits(words(text), lang) == {d} for text in training_captions(d, lang))
    assert named_digits(["the", "digit", "seven", "one"], "en") == {1, 7}
    assert named_digits(["digit", "odd"], "en") == set()
    assert named_digits(["seven"], "zh") == set()  # the names of the other language do not count


def test_closest_other_digit_shares_most_attributes():
    g = torch.Generator().manual_seed(0)

    def draws(digit):
        return {closest_other_digit(digit, g) for _ in range(60)}

    assert draws(3) == {1, 5, 7}  # odd and open, like 3
    assert draws(0) == {6, 8}  # even and round
    assert draws(6) == {0, 8}
    assert draws(2) == {4}  # the only other even open digit
    # 9 is the only odd round digit: the closest share one attribute, odd (1, 3, 5, 7) or round (0, 6, 8)
    assert draws(9) == {0, 1, 3, 5, 6, 7, 8}
    assert closest_other_digit(7, torch.Generator().manual_seed(4)) == closest_other_digit(7, torch.Generator().manual_seed(4))


def test_matching_pairs_share_the_template_and_name_another_digit():
    y = torch.arange(10).repeat(3)
    for lang in LANGUAGES:
        for hard in (False, True):
            captions, truth = matching_pairs(y, lang, hard, torch.Generator().manual_seed(0))
            assert len(captions) == 2 * len(y) and truth.tolist() == [1, 0] * len(y)
            others = []
            for d, positive, negative in zip(y.tolist(), captions[0::2], captions[1::2], strict=True):
                assert positive in training_captions(d, lang)
                template = TEMPLATES[lang][training_captions(d, lang).index(positive)]
                (other,) = named_digits(words(negative), lang)
                assert other != d and negative == caption(other, lang, template)  # the same template, another digit
                others.append(other)
                if hard:
                    shared = (other % 2 == d % 2) + ((other in ROUND) == (d in ROUND))
                    assert shared == (1 if d == 9 else 2)
            if not hard:
                assert len(set(others)) == 10  # uniform: every digit is drawn as a negative somewhere
    assert matching_pairs(y, "en", True, torch.Generator().manual_seed(3))[0] == matching_pairs(y, "en", True, torch.Generator().manual_seed(3))[0]


def test_itm_scores_are_accuracies(splits, monkeypatch):
    model = _model()
    x, y = splits.test.x[:20], splits.test.y[:20]
    for lang in LANGUAGES:
        for hard in (False, True):
            value = itm_accuracy(model, x, y, lang, hard, torch.Generator().manual_seed(0))
            assert 0 <= value <= 1 and value * 40 == pytest.approx(round(value * 40), abs=1e-4)  # a share of the 40 pairs
        assert 0 <= itm_zero_shot_accuracy(model, x, y, lang) <= 1
    # an ITM head that always says "match" is right on the positives only: exactly 1/2; zero-shot takes the first prompt
    with torch.no_grad():
        model.itm_head.weight.zero_()
        model.itm_head.bias.copy_(torch.tensor([0.0, 1.0]))
    assert itm_accuracy(model, x, y, "en", True, torch.Generator().manual_seed(0)) == 0.5
    assert itm_zero_shot_accuracy(model, x, y, "en") == pytest.approx((y == 0).float().mean().item())
    # the zero-shot pairs are (image i, prompt d), 10 per image in digit order: a spy checks them
    calls = _spy(model, monkeypatch)
    itm_zero_shot_accuracy(model, x[:3], y[:3], "zh")
    ((images, texts, _),) = calls
    assert texts == captions.prompts("zh") * 3 and images.shape[0] == 30


def test_caption_scores_are_shares(splits, monkeypatch):
    model = _model()
    x, y = splits.test.x[:4], splits.test.y[:4]
    scores = caption_scores(model, x, y, "en")
    assert set(scores) == {"exact", "digit"} and all(0 <= v <= 1 for v in scores.values())
    # scripted captions: exact, right digit in a made-up sentence, two digits, a wrong digit
    d = y.tolist()
    script = [
        [*words(caption(d[0], "en", TEMPLATES["en"][2])), EOS],
        ["digit", NAMES["en"][d[1]], EOS],
        ["the", "digit", NAMES["en"][d[2]], NAMES["en"][(d[2] + 1) % 10], EOS],
        ["the", "digit", NAMES["en"][(d[3] + 1) % 10], EOS],
    ]
    _scripted(model, script, monkeypatch)
    assert caption_scores(model, x, y, "en") == {"exact": 0.25, "digit": 0.5}


# ------------------------------------------------------------------ scores of the enabled heads


def _keys(c: BLIPConfig) -> set:
    keys = {"images"}
    for lang in LANGUAGES:
        if c.itc:
            keys |= {f"zero_shot_{lang}", f"image_to_text_{lang}"}
        if c.itm:
            keys |= {f"zero_shot_itm_{lang}", f"itm_random_{lang}", f"itm_hard_{lang}"}
        if c.lm:
            keys |= {f"caption_exact_{lang}", f"caption_digit_{lang}"}
    return keys


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={v[k]}" for k in v) or "all")
def test_evaluate_and_validate_read_only_the_enabled_heads(splits, variant):
    model = _model(**variant)
    scores = evaluate(model, splits)
    assert set(scores) == _keys(model.config)
    assert scores["images"] == len(splits.test) == 447
    assert all(0 <= v <= 1 for k, v in scores.items() if k != "images")
    error = SPEC.validate(model, splits)
    assert 0 <= error <= 1
    assert not model.training  # evaluation leaves the mode alone


def test_validate_is_the_mean_error_of_the_enabled_heads(splits):
    val = splits.val
    itc = _model(itm=False, lm=False)
    recalls = [retrieval_recall_at_1(itc, val.x, val.y, lang, torch.Generator().manual_seed(0))["image_to_text"] for lang in LANGUAGES]
    assert SPEC.validate(itc, splits) == pytest.approx(1 - sum(recalls) / 2)
    lm = _model(itc=False, itm=False)
    exact = [caption_scores(lm, val.x, val.y, lang)["exact"] for lang in LANGUAGES]
    assert SPEC.validate(lm, splits) == pytest.approx(1 - sum(exact) / 2)
    both = _model(lm=False)
    recalls = [retrieval_recall_at_1(both, val.x, val.y, lang, torch.Generator().manual_seed(0))["image_to_text"] for lang in LANGUAGES]
    hard = [itm_accuracy(both, val.x, val.y, lang, True, torch.Generator().manual_seed(0)) for lang in LANGUAGES]
    assert SPEC.validate(both, splits) == pytest.approx(1 - (sum(recalls) + sum(hard)) / 4)  # the zero-shot prompts take no part
    assert SPEC.sample is None and train_defaults("digits")["epochs"] == 60


# ------------------------------------------------------------------ a short training run


def test_a_short_run_learns_to_caption_and_match(splits):
    set_seed(0)
    model = BLIP(BLIPConfig(dim=32, heads=2, image_depth=1, text_depth=1, dropout=0.0))
    config = TrainConfig(**{**train_defaults("digits"), "epochs": 20, "device": "cpu", "patience": 0})
    fit(model, (splits.train.x, splits.train.y), config, progress=False)
    scores = evaluate(model, splits)
    # 20 epochs, ~8 s on one thread; over seeds 0..3: caption digit and exact 0.81-0.85, ITM hard 0.88-0.90,
    # zero-shot by ITM 0.63-0.85 and by ITC 0.66-0.89. Chance: 0.1 for a digit, 0.5 for ITM's pairs
    for lang in LANGUAGES:
        assert scores[f"caption_digit_{lang}"] > 0.6, scores
        assert scores[f"caption_exact_{lang}"] > 0.5, scores
        assert scores[f"itm_hard_{lang}"] > 0.7, scores
        assert scores[f"zero_shot_itm_{lang}"] > 0.4, scores
        assert scores[f"zero_shot_{lang}"] > 0.4, scores


# ------------------------------------------------------------------ the CLI


def test_cli_trains_and_evaluates_blip_and_refuses_to_sample_it(tmp_path, capsys):
    from unimodel.cli import main

    out = tmp_path / "blip"
    small = ["--dim", "16", "--heads", "2", "--image-depth", "1", "--text-depth", "1"]
    assert main(["train", "blip", *small, "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "blip" and report["images"] == 447
    assert {"caption_exact_en", "caption_digit_zh", "itm_hard_en", "zero_shot_itm_zh", "zero_shot_en", "image_to_text_zh"} <= set(report)
    assert main(["sample", str(out), "--out", str(tmp_path / "x.png")]) == 2
    assert "draws no samples" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    # an ablation from the command line: only its heads are scored
    lm_only = tmp_path / "lm"
    assert main(["train", "blip", *small, "--itc", "false", "--itm", "false", "--hard-negatives", "false", "--epochs", "1", "--out", str(lm_only)]) == 0
    capsys.readouterr()
    assert main(["eval", str(lm_only)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "caption_exact_en" in report and "itm_hard_en" not in report and "zero_shot_en" not in report


def test_cli_rejects_a_blip_without_losses(tmp_path, capsys):
    from unimodel.cli import main

    out = tmp_path / "none"
    small = ["--dim", "16", "--heads", "2", "--image-depth", "1", "--text-depth", "1", "--epochs", "1"]  # quick, should it train after all
    assert main(["train", "blip", *small, "--itc", "false", "--itm", "false", "--lm", "false", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "at least one of itc, itm and lm must be true" in err and len(err.strip().splitlines()) == 1
    assert not (out / "checkpoint.pt").exists()
    assert main(["train", "blip", *small, "--itc", "false", "--out", str(tmp_path / "hard")]) == 2
    assert "hard negatives" in capsys.readouterr().err
