"""advcl-supcon: registers the ``supcon`` loss and the ``supcon`` objective with advcl."""

from advcl.api import hookimpl
from advcl_supcon.loss import SupConLoss
from advcl_supcon.objective import SupConObjective

__version__ = "0.1.0"


@hookimpl
def register_losses(register):
    register(SupConLoss)


@hookimpl
def register_objectives(register):
    register(SupConObjective)
