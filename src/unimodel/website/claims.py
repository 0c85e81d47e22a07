"""Claims a page makes about the numbers the build computes, checked by the build.

A sentence that ranks, compares or thresholds computed numbers carries its
claim right after it, in the page's Markdown::

    Captioning is better when trained together, on every seed.
    [[? unified-model-families.rows.joint.caption_exact.lowest > unified-model-families.rows.understanding.caption_exact.highest ]]

A claim is a comparison (``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``,
chained or joined by ``and``/``or``/``not``) of numbers: paths into the
results, written as in ``[[result.key]]``, literals, ``+ - * /`` (a minus
between spaces: keys may hold hyphens), ``abs``, ``min`` and ``max``. Nothing else is evaluated. A claim that holds leaves no
trace in the page. One that does not fails a full build, naming the page,
the claim and the values; a quick build, whose numbers are not the text's,
marks it in the page instead.
"""

from __future__ import annotations

import ast
import operator
import re

from unimodel.figures.registry import lookup

CLAIM = re.compile(r"\s*\[\[\?\s*(.+?)\s*\]\]")
REFERENCE = re.compile(r"(?<![\w.-])([a-z][a-z0-9-]*)\.([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)")
MARK = {"zh": "（快速构建下这句话不成立：{claim}）", "en": " (under the quick build this does not hold: {claim})"}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne}
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_FUNCTIONS = {"abs": abs, "min": min, "max": max}


class ClaimError(ValueError):
    """A claim that does not hold, or cannot be read."""


def evaluate(claim: str, results: dict) -> tuple[bool, dict[str, float]]:
    """Whether ``claim`` holds for ``results``, and the value of each result it reads."""
    values: dict[str, float] = {}  # each result path the claim reads -> its value
    numbers: dict[str, float] = {}  # the variable standing for it in the parsed expression -> its value

    def name(match: re.Match) -> str:
        try:
            value = lookup(results, match.group(1), match.group(2))
        except KeyError as error:
            raise ClaimError(f"{claim!r}: {error.args[0]}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ClaimError(f"{claim!r}: {match.group(0)} is not a number ({value!r})")
        variable = f"_{len(numbers)}"  # one per reference: a result named twice gets two variables holding its value
        values[match.group(0)] = value
        numbers[variable] = value
        return variable

    expression = REFERENCE.sub(name, claim)
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise ClaimError(f"{claim!r} is not a comparison of numbers") from None
    held = _value(tree.body, numbers, claim)
    if not isinstance(held, bool):
        raise ClaimError(f"{claim!r} compares nothing: it must be true or false")
    return held, values


def _value(node: ast.AST, numbers: dict[str, float], claim: str):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name) and node.id in numbers:
        return numbers[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        operand = _value(node.operand, numbers, claim)
        return -operand if isinstance(node.op, ast.USub) else not operand
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        return _ARITHMETIC[type(node.op)](_value(node.left, numbers, claim), _value(node.right, numbers, claim))
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        left = _value(node.left, numbers, claim)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _value(right_node, numbers, claim)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        parts = [_value(v, numbers, claim) for v in node.values]
        return all(parts) if isinstance(node.op, ast.And) else any(parts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
        return _FUNCTIONS[node.func.id](*(_value(a, numbers, claim) for a in node.args))
    raise ClaimError(f"{claim!r}: {ast.unparse(node)!r} is not allowed in a claim (numbers, results, + - * /, comparisons, and/or/not, abs/min/max)")


def check_claims(markdown: str, results: dict, where: str, language: str, strict: bool) -> str:
    """``markdown`` with its claims checked and taken out; a false one raises ClaimError if ``strict``, else is marked."""

    def replace(match: re.Match) -> str:
        claim = match.group(1)
        held, values = evaluate(claim, results)
        if held:
            return ""
        shown = ", ".join(f"{k} = {v:.4g}" for k, v in values.items())
        if strict:
            raise ClaimError(f"{where}: the claim [[? {claim} ]] does not hold ({shown})")
        return MARK[language].format(claim=f"`{claim}`")

    return CLAIM.sub(replace, markdown)
