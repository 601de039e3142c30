"""PyTorch adapter: :class:`ScheduleLR` (a learning-rate scheduler following any refinedlr
schedule) and :class:`GradNormRecorder` (per-step gradient norms for refinement, and the norms of
an Adam-type optimizer's update direction for the bound check).

Modules: ``scheduler`` (:class:`ScheduleLR`), ``sink`` (the record's buffer, file and lifetime),
``recorder`` (:class:`GradNormRecorder`: the sink and its sources), ``norms`` (gradient norms,
DTensor-aware: :func:`grad_norms`), ``updates`` (update-direction norms of Adam, AdamW, NAdam,
RAdam: :func:`update_norms`), ``process`` (the rank, flushing on SIGTERM), ``seams`` (the
framework internals touched, in one place).

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

An AdamW loop recording what refinement (``l1``) and its verification (``update_l2``) need:

>>> opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
>>> rec = GradNormRecorder(kinds=("l1", "update_l2"))
>>> _ = rec.attach(opt)  # l1 before each step, update_l2 from the state after it
>>> for step in range(3):
...     opt.zero_grad()
...     model(torch.randn(8, 4)).square().mean().backward()
...     opt.step()
>>> rec.to_record().kinds, rec.step
(('l1', 'update_l2'), 3)

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
