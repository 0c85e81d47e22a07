"""Claims about computed numbers, checked by the build: one that holds leaves no trace, a false one fails a full build and is marked in a quick one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import twins

from unimodel.figures import registry
from unimodel.website import claims

DOCS = Path(__file__).resolve().parents[1] / "docs"
RESULTS = {"demo-result": {"joint": {"lowest": 0.91, "mean": 0.93}, "alone": {"highest": 0.88}, "per-seed": [0.5, 0.7], "name": "x", "flag": True}}


@pytest.mark.parametrize(
    "claim",
    [
        "demo-result.joint.lowest > demo-result.alone.highest",
        "demo-result.joint.lowest - demo-result.alone.highest >= 0.03",
        "0.9 < demo-result.joint.lowest < demo-result.joint.mean",
        "abs(demo-result.per-seed.1 - demo-result.per-seed.0) <= 0.2 and not demo-result.joint.mean > 1",
        "max(demo-result.per-seed.0, demo-result.per-seed.1) == 0.7 or 1 > 2",
    ],
)
def test_a_claim_that_holds_leaves_no_trace(claim):
    text = f"Trained together it is better, on every seed. [[? {claim} ]] Next sentence."
    assert claims.check_claims(text, RESULTS, "page.md", "en", strict=True) == "Trained together it is better, on every seed. Next sentence."


def test_a_false_claim_fails_a_full_build_naming_page_claim_and_values():
    text = "Better on every seed. [[? demo-result.alone.highest > demo-result.joint.lowest ]]"
    with pytest.raises(
        claims.ClaimError,
        match=re.escape(
            "page.md: the claim [[? demo-result.alone.highest > demo-result.joint.lowest ]] does not hold (demo-result.alone.highest = 0.88, demo-result.joint.lowest = 0.91)"
        ),
    ):
        claims.check_claims(text, RESULTS, "page.md", "en", strict=True)


def test_a_quick_build_marks_a_false_claim_in_the_page_language():
    text = "每个种子都更好。[[? demo-result.alone.highest > 1 ]]"
    assert claims.check_claims(text, RESULTS, "page.md", "zh", strict=False) == "每个种子都更好。（快速构建下这句话不成立：`demo-result.alone.highest > 1`）"
    assert "does not hold" in claims.check_claims("Better. [[? 1 > 2 ]]", RESULTS, "p", "en", strict=False)


@pytest.mark.parametrize(
    "claim, message",
    [
        ("demo-result.nope > 1", "has no 'nope'"),
        ("other.x > 1", "unknown result"),
        ("demo-result.name > 1", "is not a number"),
        ("demo-result.flag > 0", "is not a number"),
        ("demo-result.joint.mean", "compares nothing"),
        ("__import__('os') > 1", "not allowed"),
        ("demo-result.joint.mean ** 2 > 0", "not allowed"),
        ("demo-result.joint.mean >", "not a comparison"),
    ],
)
def test_a_claim_that_cannot_be_read_fails_whatever_the_profile(claim, message):
    for strict in (True, False):
        with pytest.raises(claims.ClaimError, match=re.escape(message)):
            claims.check_claims(f"[[? {claim} ]]", RESULTS, "page.md", "en", strict)


def test_every_claim_on_the_site_reads_registered_results_and_both_languages_make_the_same_claims():
    registry.load_chapters()
    for english in twins.pages("en"):
        chinese = twins.chinese(english)
        made = {page: sorted(claims.CLAIM.findall(page.read_text(encoding="utf-8"))) for page in (chinese, english)}
        assert made[chinese] == made[english], f"{chinese.name} and {english.name} make different claims"
        for claim in made[english]:
            for name, _ in claims.REFERENCE.findall(claim):
                assert name in registry.RESULTS, (english.name, claim, name)


def test_a_result_named_twice_keeps_each_reference_its_own_value():
    results = {"r": {"a": 0.9, "b": 0.5}}
    # references a, b, a, b: the second b once took the variable of the second a, and a - b read as b - b = 0
    assert claims.evaluate("r.a > r.b and r.a - r.b > 0.3", results)[0] is True
    assert claims.evaluate("abs(r.a - r.b) <= 0.5 and max(r.a, r.b) >= 0.8", results)[0] is True
