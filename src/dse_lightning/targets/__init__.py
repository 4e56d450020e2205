"""Where the student's targets come from: the target-source seam, chosen by `targets=<name>` (conf/targets/).

A source turns the fitted teacher into `StudentTargets`: logits joined to the train rows by id, or a frozen
teacher that scores each train batch. A new source is one module here (a `TargetSource` subclass) and one
YAML in conf/targets/ naming it; the DataModule and the DistillModule take what it returns.
"""

from .base import StudentTargets, TargetContext, TargetSource
from .logits import ExportedLogits
from .online import OnlineTeacher

__all__ = ["ExportedLogits", "OnlineTeacher", "StudentTargets", "TargetContext", "TargetSource"]
