"""PyTorch adapter: :class:`ScheduleLR` (a learning-rate scheduler following any refinedlr
schedule) and :class:`GradNormRecorder` (per-step gradient norms for refinement, and the norms of
an Adam-type optimizer's update direction for the bound check). Needs the ``torch`` extra; the
how-to page "A plain PyTorch loop" shows both in a training loop.
"""

try:
    import torch  # noqa: F401
except ImportError as exc:
    raise ImportError(
        f'refinedlr.pytorch needs torch ({exc}): pip install "refinedlr[torch]"'
    ) from exc

from .norms import grad_norms
from .recorder import GradNormRecorder
from .scheduler import OnMismatch, ScheduleLR, ScheduleMismatchError
from .updates import UnsupportedOptimizerError, update_norms

__all__ = [
    "GradNormRecorder",
    "OnMismatch",
    "ScheduleLR",
    "ScheduleMismatchError",
    "UnsupportedOptimizerError",
    "grad_norms",
    "update_norms",
]
