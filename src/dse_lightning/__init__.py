"""dse-lightning: Distilled Sentence Embedding with PyTorch Lightning and Hydra."""

__version__ = "0.1.0"


def load_student(path):
    """Load an exported student (see `dse_lightning.export`); imported lazily to keep `import` light."""
    from .export import load_student as _load

    return _load(path)
