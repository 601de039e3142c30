"""refinedlr: linear-decay and refined learning-rate schedules (arXiv 2310.07831).

The pure core (numpy/scipy): :mod:`~refinedlr.schedules`, :mod:`~refinedlr.refinement`,
:mod:`~refinedlr.bounds`, :mod:`~refinedlr.plan`, :mod:`~refinedlr.records`,
:mod:`~refinedlr.summary`. Adapters: :mod:`refinedlr.pytorch`, :mod:`refinedlr.integrations`
(Hugging Face, Lightning, optax), :mod:`refinedlr.plot`, :mod:`refinedlr.cli`.

>>> import refinedlr
>>> refinedlr.refine([4.0, 3.0, 2.0, 2.0, 2.0, 2.0], tau=0.0).preview().round(3)
array([0.37 , 0.593, 1.   , 0.667, 0.333, 0.   ])
"""

from importlib.metadata import PackageNotFoundError, version

from .records import GradNormRecord, NormKindWarning, RecordError, RecordWriter, read_record
from .refinement import (
    CollapseWarning,
    MissingNormsWarning,
    RefineError,
    Refinement,
    refine,
    refine_details,
)
from .registry import available_schedules, get_schedule, schedule_from_spec
from .risk import RefinementRisk, refinement_risk
from .schedule_io import as_schedule, load_schedule, save_schedule
from .schedules import (
    Constant,
    Continuation,
    Cosine,
    CosineWithRestarts,
    InverseSqrt,
    InverseTime,
    LinearDecay,
    Polynomial,
    Schedule,
    ScheduleError,
    StepWise,
    Tabulated,
    WarmupStableDecay,
)
from .summary import ScheduleSummary, summarize
from .verify import VERIFY_THRESHOLD, Verification, verify_refinement

try:
    __version__ = version("refinedlr")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "VERIFY_THRESHOLD",
    "CollapseWarning",
    "Constant",
    "Continuation",
    "Cosine",
    "CosineWithRestarts",
    "GradNormRecord",
    "InverseSqrt",
    "InverseTime",
    "LinearDecay",
    "MissingNormsWarning",
    "NormKindWarning",
    "Polynomial",
    "RecordError",
    "RecordWriter",
    "RefineError",
    "Refinement",
    "RefinementRisk",
    "Schedule",
    "ScheduleError",
    "ScheduleSummary",
    "StepWise",
    "Tabulated",
    "Verification",
    "WarmupStableDecay",
    "__version__",
    "as_schedule",
    "available_schedules",
    "get_schedule",
    "load_schedule",
    "read_record",
    "refine",
    "refine_details",
    "refinement_risk",
    "save_schedule",
    "schedule_from_spec",
    "summarize",
    "verify_refinement",
]
