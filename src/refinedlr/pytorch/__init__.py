"""PyTorch adapter: :class:`ScheduleLR` (a learning-rate scheduler following any refinedlr
schedule) and :class:`GradNormRecorder` (per-step gradient norms for refinement, and the norms of
an Adam-type optimizer's update direction for the bound check). Needs the ``torch`` extra.

>>> import torch
>>> from refinedlr.pytorch import GradNormRecorder, ScheduleLR
>>> model = torch.nn.Linear(4, 1)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> sched = ScheduleLR(opt, "linear", total_steps=10)
>>> rec = GradNormRecorder()  # path=None: in memory
>>> for step in range(10):
...     opt.zero_grad()
...     model(torch.randn(8, 4)).square().mean().backward()
...     _ = rec.clip_grad_norm_(model.parameters(), max_norm=10.0)  # record (pre-clip), clip
...     opt.step()
...     sched.step()
>>> len(rec.to_record()), round(sched.get_last_lr()[0], 6)
(10, 0.0)
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
