"""PyTorch adapter: :class:`ScheduleLR` (a learning-rate scheduler following any refinedlr
schedule) and :class:`GradNormRecorder` (per-step gradient norms for refinement).

A plain training loop that records the gradient norms a later refinement needs:

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

Requires ``torch`` (the ``refinedlr[torch]`` extra); the rest of refinedlr does not import it.
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

__all__ = ["GradNormRecorder", "OnMismatch", "ScheduleLR", "ScheduleMismatchError", "grad_norms"]
