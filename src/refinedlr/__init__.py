"""refinedlr: linear-decay and refined learning-rate schedules (arXiv 2310.07831).

The pure core (numpy/scipy): :mod:`~refinedlr.schedules` (schedules as vectorised functions of
the step), :mod:`~refinedlr.refine` (refinement from gradient norms), :mod:`~refinedlr.bounds`
(last-iterate bounds), :mod:`~refinedlr.records` (gradient-norm logs), :mod:`~refinedlr.summary`.
Adapters: :mod:`refinedlr.pytorch` (scheduler and recorder), :mod:`refinedlr.integrations`
(Hugging Face, Lightning, optax), :mod:`refinedlr.plot`, :mod:`refinedlr.cli`.

>>> import refinedlr
>>> refinedlr.refine([4.0, 3.0, 2.0, 2.0, 2.0, 2.0], tau=0.0).preview().round(3)
array([0.37 , 0.593, 1.   , 0.667, 0.333, 0.   ])
"""

from .records import GradNormRecord, RecordError, RecordWriter, read_record
from .refine import RefineError, Refinement, refine, refine_details
from .schedule_io import load_schedule, save_schedule
from .schedules import (
    Constant,
    Cosine,
    InverseSqrt,
    InverseTime,
    LinearDecay,
    Polynomial,
    Schedule,
    ScheduleError,
    StepWise,
    Tabulated,
    WarmupStableDecay,
    available_schedules,
    get_schedule,
    schedule_from_spec,
)
from .summary import ScheduleSummary, summarize

__version__ = "0.1.0"

__all__ = [
    "Constant",
    "Cosine",
    "GradNormRecord",
    "InverseSqrt",
    "InverseTime",
    "LinearDecay",
    "Polynomial",
    "RecordError",
    "RecordWriter",
    "RefineError",
    "Refinement",
    "Schedule",
    "ScheduleError",
    "ScheduleSummary",
    "StepWise",
    "Tabulated",
    "WarmupStableDecay",
    "__version__",
    "available_schedules",
    "get_schedule",
    "load_schedule",
    "read_record",
    "refine",
    "refine_details",
    "save_schedule",
    "schedule_from_spec",
    "summarize",
]
