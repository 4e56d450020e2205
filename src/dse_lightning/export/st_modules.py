"""Where exports written before the DSE pooling shipped its own code (`dse_pooling.py`) find it: their
modules.json names `dse_lightning.export.st_modules.DSEPooling` (now models/components/st_modules.py)."""

from ..models.components.st_modules import DSEPooling

__all__ = ["DSEPooling"]
