"""Serving backends: one module per runtime, each backend a `Backend` (base.py), all listed in `BACKENDS`.

    torch          the export's encoder as trained (torch.py)
    onnx           its ONNX graph, fp32, run by onnxruntime (onnx.py)
    onnx-int8      the graph dynamically quantized to int8 by onnxruntime (onnx.py)
    openvino       the graph as OpenVINO IR, fp32 (openvino.py)
    openvino-int8  the IR statically quantized to int8 by NNCF, calibrated on task sentences (openvino.py)

`load_student(path, backend)`, the CLIs' `--backend` choices, `export.onnx` (which writes each backend's
files into an export), a store's identity, the bench's encode rows and the frontier read this registry.
A new backend is a `Backend` subclass in its own module and one `register(...)` call: in `_BUILTIN`
below for the package's own, or in the module that defines it anywhere else.
"""

from __future__ import annotations

from pathlib import Path

from ...store import verify
from .base import GRAPHS, Backend, GraphBackend, Run, Writing
from .onnx import Onnx, OnnxInt8
from .openvino import OpenVino, OpenVinoInt8
from .torch import Torch

DEFAULT = "torch"  # the export as trained: what `backend=` means by default and other backends approximate
BACKENDS: dict[str, Backend] = {}  # name -> backend, in the order CLIs, bench rows and `export.onnx` use


def register(backend: Backend) -> Backend:
    """Add `backend` to the registry (a name taken already is an error); returns it."""
    if not backend.name or backend.name in BACKENDS:
        raise ValueError(f"backend name {backend.name!r}: empty or registered already ({tuple(BACKENDS)})")
    BACKENDS[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise ValueError(f"backend={name!r}: expected one of {tuple(BACKENDS)}")
    return BACKENDS[name]


def verify_served(path: str | Path, kind: str, remedy: str, serving: Backend | None = None) -> dict:
    """The meta of the export at `path` (a student's or a cross-encoder's, by `kind`) after checking its
    files against its manifest: every file but the graphs of the backends other than `serving` (None:
    but every graph), so that one bad graph makes only its own backend refuse."""
    others = [b for b in BACKENDS.values() if b.file and b is not serving]
    return verify(
        path,
        kind,
        remedy,
        skip=lambda rel: not (serving and serving.owns(rel)) and any(b.owns(rel) for b in others),
    )


_BUILTIN = (Torch(), Onnx(), OnnxInt8(), OpenVino(), OpenVinoInt8())
for _backend in _BUILTIN:
    register(_backend)

__all__ = [
    "BACKENDS",
    "DEFAULT",
    "GRAPHS",
    "Backend",
    "GraphBackend",
    "Run",
    "Writing",
    "get_backend",
    "register",
    "verify_served",
]
