"""dse-lightning: Distilled Sentence Embedding with PyTorch Lightning and Hydra."""

__version__ = "0.1.0"


def load_student(path, backend: str = "torch", device: str = "cpu"):
    """Load an exported student (see `dse_lightning.export`); imported lazily to keep `import` light.
    backend: torch, onnx, onnx-int8 (onnxruntime), openvino or openvino-int8 (the export needs those graphs
    first: `python -m dse_lightning.export.onnx`), or any backend registered in
    `dse_lightning.export.backends`; device: where the torch encoder runs."""
    from .export import load_student as _load

    return _load(path, backend, device)
