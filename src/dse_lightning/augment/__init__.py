"""Transfer sets: new sentence pairs made from the task's train sentences, labelled by the teacher alone.

The student sees the teacher on pairs it has no gold label for, where distillation has something to teach
(Tang et al. 2019; Augmented SBERT, Thakur et al. 2021). `augment=<name>` (conf/augment/) wraps the target
source: `TransferSet` generates the pairs (`Perturb`, `Recombine`), has the teacher label them (cached in
the artifact store, resumable) and adds them to the student's train rows without a gold label.
"""

from .generators import PairGenerator
from .perturb import Perturb
from .recombine import Recombine
from .transfer import NoTransfer, TransferSet

__all__ = ["NoTransfer", "PairGenerator", "Perturb", "Recombine", "TransferSet"]
