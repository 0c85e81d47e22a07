"""The trained models a page runs in the reader's browser: exported to ONNX at build time, checked against PyTorch.

A chapter registers ``@exported("page/name")`` on a function that returns an
``Export``: a trained model, the call the page's widget makes (a method or
any expression of the model), named example inputs and the names of the
outputs, and what the widget needs besides the network (``meta``: a noise
schedule, a vocabulary, a few test digits). The build writes the call as
``models/page/name.onnx`` and checks it before any page can use it:
onnxruntime runs the file on the example inputs and every output must equal
PyTorch's within ``TOLERANCE``, or the build fails. The file's card
(``models/page/name.json``: the inputs' and outputs' names and shapes, the
example and PyTorch's outputs on it, the difference measured, ``meta``) is
what the widget reads and what the browser tests hold ONNX Runtime Web to.

The file is what ONNX Runtime Web 1.31 (``package.json``) reads: operator set
``OPSET`` of the default domain, IR version ``IR_VERSION`` at most, one graph
with fixed shapes (a widget calls it on one example at a time).
"""

from __future__ import annotations

import copy
import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from unimodel import cache
from unimodel.figures import registry

OPSET = 18  # the ONNX operator set the exporter writes: ONNX 1.13 (2022), older than any ONNX Runtime Web of the last three years
IR_VERSION = 10  # the newest IR version a file may have (ONNX 1.16); the browser tests run every file in ONNX Runtime Web
# |ONNX Runtime - PyTorch| <= ATOL + RTOL * |PyTorch|, element by element, for every output
TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}
CARD = "unimodel.card"  # the key of the card in the file's metadata

log = logging.getLogger(__name__)


class ExportError(RuntimeError):
    """An export failed its check: the message says which output and by how much."""


@dataclass(frozen=True)
class Export:
    """What a widget runs: ``call(model, *inputs)`` on inputs shaped like ``inputs``, giving ``outputs``."""

    model: nn.Module  # trained; exported in eval mode, on the CPU, as a copy
    call: Callable[..., torch.Tensor | tuple[torch.Tensor, ...]]  # (model, *inputs) -> one output or a tuple of them
    inputs: dict[str, torch.Tensor]  # input name -> the example the check runs (float32)
    outputs: tuple[str, ...]  # the names of the call's outputs, in order
    meta: dict = field(default_factory=dict)  # JSON-able: what the widget needs besides the network


class _Call(nn.Module):
    """``forward(*inputs) = call(model, *inputs)``: the exporter traces a module's ``forward``."""

    def __init__(self, model: nn.Module, call: Callable) -> None:
        super().__init__()
        self.model = model
        self.call = call

    def forward(self, *inputs: torch.Tensor):
        return self.call(self.model, *inputs)


def _as_tuple(outputs) -> tuple[torch.Tensor, ...]:
    return outputs if isinstance(outputs, tuple) else (outputs,)


def _tensor(array) -> dict:
    """A tensor or array as the card stores it: its shape and its values, flat."""
    values = torch.as_tensor(array, dtype=torch.float32)
    return {"shape": list(values.shape), "data": [round(float(v), 7) for v in values.flatten()]}


def compare(expected: dict[str, dict], got: dict[str, torch.Tensor | object], tolerance: dict = TOLERANCE) -> float:
    """The largest |got - expected| over every output; raises ExportError where an element misses the tolerance."""
    largest = 0.0
    for name, want in expected.items():
        want_values = torch.tensor(want["data"], dtype=torch.float64).reshape(want["shape"])
        got_values = torch.as_tensor(got[name], dtype=torch.float64)
        if list(got_values.shape) != list(want_values.shape):
            raise ExportError(f"output {name!r} has shape {list(got_values.shape)}, PyTorch gives {list(want_values.shape)}")
        difference = (got_values - want_values).abs()
        allowed = tolerance["atol"] + tolerance["rtol"] * want_values.abs()
        worst = int((difference - allowed).flatten().argmax())
        if difference.flatten()[worst] > allowed.flatten()[worst]:
            raise ExportError(
                f"output {name!r} differs from PyTorch by {float(difference.flatten()[worst]):.3g} at element {worst} "
                f"(allowed {float(allowed.flatten()[worst]):.3g}: atol {tolerance['atol']}, rtol {tolerance['rtol']})"
            )
        largest = max(largest, float(difference.max()))
    return largest


def to_onnx(export: Export) -> tuple[bytes, dict]:
    """The ONNX file of ``export`` and its card, after onnxruntime has matched PyTorch on the example."""
    import onnxruntime

    network = _Call(copy.deepcopy(export.model).cpu(), export.call).eval()
    inputs = {name: value.detach().cpu().float() for name, value in export.inputs.items()}
    with torch.no_grad():
        expected = _as_tuple(network(*inputs.values()))
    if len(expected) != len(export.outputs):
        raise ExportError(f"the call gives {len(expected)} outputs, the export names {len(export.outputs)}: {export.outputs}")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # its notes on skipped torchvision operators say nothing here
    with warnings.catch_warnings():  # PyTorch's own use of a pytree API it deprecated: nothing the caller can change
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec")
        program = torch.onnx.export(
            network, tuple(inputs.values()), dynamo=True, opset_version=OPSET, input_names=list(inputs), output_names=list(export.outputs), verbose=False
        )
    proto = program.model_proto
    if proto.ir_version > IR_VERSION:
        raise ExportError(f"the exporter wrote IR version {proto.ir_version}; ONNX Runtime Web reads at most {IR_VERSION}")
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip(export.outputs, session.run(list(export.outputs), {name: value.numpy() for name, value in inputs.items()}), strict=True))
    card = {
        "inputs": {name: _tensor(value) for name, value in inputs.items()},
        "outputs": {name: _tensor(value) for name, value in zip(export.outputs, expected, strict=True)},
        "tolerance": TOLERANCE,
        "opset": OPSET,
        "ir_version": proto.ir_version,
        "meta": export.meta,
    }
    card["max_difference"] = compare(card["outputs"], got)
    entry = proto.metadata_props.add()
    entry.key, entry.value = CARD, json.dumps(card, sort_keys=True)
    return proto.SerializeToString(), card


def card_of(path) -> dict:
    """The card stored in the ONNX file at ``path``."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == CARD:
            return json.loads(entry.value)
    raise ExportError(f"{path} has no {CARD} in its metadata: it was not written by unimodel.website.exports")


def exported_model(name: str) -> Path:
    """The cached ONNX file of browser model ``name`` (``@exported``), exported and checked on a miss."""
    registry.load_chapters()
    item = registry.EXPORTS[name]

    def produce(tmp: str) -> None:
        started = time.perf_counter()
        data, card = to_onnx(item.function())
        Path(tmp).write_bytes(data)
        log.info(
            "unimodel: exported %s (%.0f kB, largest difference from PyTorch %.1e) in %.1f s",
            name,
            len(data) / 1e3,
            card["max_difference"],
            time.perf_counter() - started,
        )

    return cache.cached_path(*registry.export_artifact(name), produce)
