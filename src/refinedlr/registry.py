"""The one table of schedule names: refinedlr's, Hugging Face's and their aliases.

Every door that takes a schedule by name goes through :func:`get_schedule`, so a name means one
schedule everywhere; Hugging Face's names keep their defaults and argument names (the docs page
"Schedules and conventions" has the two deliberate differences).

Example:
    >>> get_schedule("cosine_with_min_lr", 10, warmup=0.2, min_lr_rate=0.1)
    Cosine(total_steps=10, warmup=0.2, after_horizon='hold', floor=0.1, cycles=0.5)
    >>> get_schedule("inverse_sqrt", 100).timescale, get_schedule("1/sqrt_t", 100).timescale
    (10000.0, 1.0)
    >>> spec = {"name": "inverse_sqrt", "total_steps": 100}
    >>> schedule_from_spec(spec) == get_schedule("inverse_sqrt", 100)
    True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from . import limits, schedules
from .records.record import brief
from .schedules import AfterHorizon, Schedule, ScheduleError

__all__ = [
    "ScheduleName",
    "available_schedules",
    "get_schedule",
    "schedule_from_spec",
    "schedule_names",
]


@dataclasses.dataclass(frozen=True)
class ScheduleName:
    """One accepted schedule name.

    Attributes:
        name: the name (compared case-insensitively, ``-`` read as ``_``).
        cls: the schedule class it builds.
        origin: ``"refinedlr"``, ``"Hugging Face"`` or ``"paper"``.
        summary: one line for people.
        defaults: parameter values the name implies, as a function of ``(T, W)``.
        arguments: other argument names and the class field each sets (besides the fields).
        absolute: absolute learning-rate arguments, and the field they set over the base LR.
        absolute_defaults: their values when none is given and the base LR is known.
        required: groups of arguments of which exactly one must be given.
        aliases: other names for the same entry.
        nested: fields that hold a schedule (in a spec: that schedule's own spec).
    """

    name: str
    cls: type[Schedule]
    origin: str
    summary: str
    defaults: Callable[[int, int], dict[str, Any]] = lambda T, W: {}
    arguments: Mapping[str, str] = dataclasses.field(default_factory=dict)
    absolute: Mapping[str, str] = dataclasses.field(default_factory=dict)
    absolute_defaults: Mapping[str, float] = dataclasses.field(default_factory=dict)
    required: tuple[tuple[str, ...], ...] = ()
    aliases: tuple[str, ...] = ()
    nested: tuple[str, ...] = ()

    def fields(self) -> list[str]:
        """The class's own parameter names (besides ``total_steps``, ``warmup``, ``after_horizon``)."""
        skip = {"total_steps", "warmup", "after_horizon"}
        return [f.name for f in dataclasses.fields(self.cls) if f.name not in skip]

    def accepted(self) -> dict[str, str]:
        """Every accepted argument name and the field it sets."""
        return {**{f: f for f in self.fields()}, **self.arguments, **self.absolute}


_HF = "Hugging Face"
_TABLE: tuple[ScheduleName, ...] = (
    ScheduleName(
        "constant",
        schedules.Constant,
        _HF,
        "s = 1 (Hugging Face's `constant` ignores a warm-up; this one honours it)",
    ),
    ScheduleName("constant_with_warmup", schedules.Constant, _HF, "warm-up, then s = 1"),
    ScheduleName(
        "linear",
        schedules.LinearDecay,
        _HF,
        "linear decay 1 - t/T, the paper's worst-case optimal schedule (floor: refinedlr's)",
        aliases=("linear_decay",),
    ),
    ScheduleName(
        "cosine",
        schedules.Cosine,
        _HF,
        "cosine annealing to 0 (floor: refinedlr's)",
        arguments={"num_cycles": "cycles"},
        aliases=("cos",),
    ),
    ScheduleName(
        "cosine_with_min_lr",
        schedules.Cosine,
        _HF,
        "cosine annealing to a floor given as min_lr_rate (fraction) or min_lr (absolute)",
        arguments={"num_cycles": "cycles", "min_lr_rate": "floor"},
        absolute={"min_lr": "floor"},
        required=(("floor", "min_lr_rate", "min_lr"),),
    ),
    ScheduleName(
        "cosine_with_restarts",
        schedules.CosineWithRestarts,
        _HF,
        "cosine annealing with num_cycles hard restarts",
        arguments={"num_cycles": "cycles"},
    ),
    ScheduleName(
        "polynomial",
        schedules.Polynomial,
        _HF,
        "polynomial decay (1 - t/T)^power to a floor; lr_end is absolute (default 1e-7 when the "
        "base LR is known, as in Hugging Face)",
        absolute={"lr_end": "floor"},
        absolute_defaults={"lr_end": 1e-7},
    ),
    ScheduleName(
        "inverse_sqrt",
        schedules.InverseSqrt,
        _HF,
        "sqrt(c / (c + t)), timescale c = the warm-up length, or 10000 without warm-up",
        defaults=lambda T, W: {"timescale": float(W or 10_000)},
    ),
    ScheduleName(
        "warmup_stable_decay",
        schedules.WarmupStableDecay,
        _HF,
        "warm-up, constant, then a cosine (decay_type) decay over num_decay_steps",
        arguments={
            "num_decay_steps": "decay",
            "num_stable_steps": "stable",
            "decay_type": "decay_shape",
            "warmup_type": "warmup_shape",
            "min_lr_ratio": "floor",
            "num_cycles": "cycles",
        },
        aliases=("wsd",),
    ),
    ScheduleName(
        "step",
        schedules.StepWise,
        "refinedlr",
        "multiply by factor (gamma) at each milestone (torch's MultiStepLR)",
        arguments={"gamma": "factor"},
        aliases=("multistep", "step_wise", "stepwise"),
    ),
    ScheduleName(
        "inverse_time",
        schedules.InverseTime,
        "paper",
        "the classical 1/t schedule: c / (c + t), offset c = 1",
        aliases=("1/t",),
    ),
    ScheduleName(
        "1/sqrt_t",
        schedules.InverseSqrt,
        "paper",
        "the classical 1/sqrt(t) schedule: sqrt(c / (c + t)), offset c = 1",
        defaults=lambda T, W: {"timescale": 1.0},
        arguments={"offset": "timescale"},
        aliases=("1/sqrt(t)", "inverse_sqrt_time"),
    ),
    ScheduleName(
        "tabulated",
        schedules.Tabulated,
        "refinedlr",
        "a table of multipliers resampled onto the horizon (what refinement returns)",
        required=(("values",),),
        aliases=("refined",),
    ),
    ScheduleName(
        "continuation",
        schedules.Continuation,
        "refinedlr",
        "a run continued from a checkpoint: its schedule, then a level and a cooldown "
        "(refinedlr.plan.extend)",
        required=(("base",),),
        nested=("base",),
    ),
)

#: Hugging Face scheduler names that are not functions of the step, or that refinedlr does not
#: offer, with what to use instead.
_REFUSED = {
    "reduce_lr_on_plateau": "it follows a metric, not the step; use torch's ReduceLROnPlateau",
    "greedy": "it follows the loss, not the step; use transformers' own GreedyLR",
    "cosine_warmup_with_min_lr": (
        "its warm-up and decay are offset by one step from every other schedule; use "
        "'cosine_with_min_lr'"
    ),
}


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


_BY_NAME = {_key(n): row for row in _TABLE for n in (row.name, *row.aliases)}


def schedule_names() -> tuple[ScheduleName, ...]:
    """Every entry of the table, in order (canonical and Hugging Face names first)."""
    return _TABLE


def available_schedules() -> list[str]:
    """Every name :func:`get_schedule` accepts (aliases included), sorted."""
    return sorted({n for e in _TABLE for n in (e.name, *e.aliases)})


def _horizon(total_steps: object, num_training_steps: object) -> int:
    if num_training_steps is not None:
        if total_steps is not None and total_steps != num_training_steps:
            raise ScheduleError(
                f"total_steps={total_steps} and num_training_steps={num_training_steps} disagree"
            )
        total_steps = num_training_steps
    if total_steps is None:
        raise ScheduleError("get_schedule needs total_steps (the number of optimizer steps)")
    if isinstance(total_steps, float) and total_steps.is_integer():
        total_steps = int(total_steps)
    if isinstance(total_steps, bool) or not isinstance(total_steps, int):
        raise ScheduleError(f"total_steps must be an integer, got {total_steps!r}")
    return total_steps


def get_schedule(
    name: str,
    total_steps: int | None = None,
    *,
    warmup: int | float = 0,
    after_horizon: AfterHorizon = "hold",
    base_lr: float | None = None,
    num_training_steps: int | None = None,
    num_warmup_steps: int | float | None = None,
    scheduler_specific_kwargs: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Schedule:
    """Build a schedule by name (see the module documentation for the names).

    Args:
        name: a canonical name, a Hugging Face name or an alias (:func:`available_schedules`).
        total_steps: the horizon ``T`` in optimizer steps (or ``num_training_steps``).
        warmup: warm-up steps (``int``) or fraction of ``T`` (``float``), or ``num_warmup_steps``.
        after_horizon: ``"hold"`` (default) or ``"raise"`` past ``T``.
        base_lr: the peak learning rate, needed only for ``lr_end`` and ``min_lr``.
        scheduler_specific_kwargs: Hugging Face's way to pass the arguments below.
        **kwargs: the schedule's parameters, by field name or by Hugging Face's argument name.

    >>> get_schedule("linear", num_training_steps=4).preview()
    array([1.  , 0.75, 0.5 , 0.25])
    >>> get_schedule("polynomial", 4, power=2.0, lr_end=1e-4, base_lr=1e-3).floor
    0.1
    """
    if not isinstance(name, str):
        raise ScheduleError(f"a schedule name is a string, got {name!r}")
    if (key := _key(name)) in _REFUSED:
        raise ScheduleError(f"schedule {name!r} is not offered: {_REFUSED[key]}")
    if (entry := _BY_NAME.get(key)) is None:
        choices = ", ".join(available_schedules())
        raise ScheduleError(f"unknown schedule name {brief(name)!r}; choose one of {choices}")
    T = _horizon(total_steps, num_training_steps)
    if num_warmup_steps is not None:
        if warmup:
            raise ScheduleError("give either warmup or num_warmup_steps, not both")
        warmup = num_warmup_steps
    given = dict(scheduler_specific_kwargs or {})
    if twice := sorted(set(given) & set(kwargs)):
        raise ScheduleError(f"{twice} given twice (as keyword and in scheduler_specific_kwargs)")
    params = _parameters(entry, {**given, **kwargs}, base_lr)
    for arg, default in entry.absolute_defaults.items():
        if entry.absolute[arg] not in params and base_lr is not None:
            params[entry.absolute[arg]] = _absolute(entry, arg, default, base_lr)
    try:
        schedule: Schedule = entry.cls(T, warmup=warmup, after_horizon=after_horizon, **params)
    except TypeError as exc:  # pragma: no cover - every argument is checked above
        raise ScheduleError(f"bad arguments for schedule {name!r}: {exc}") from None
    implied = {k: v for k, v in entry.defaults(T, schedule.warmup_steps).items() if k not in params}
    return dataclasses.replace(schedule, **implied) if implied else schedule


def _absolute(entry: ScheduleName, arg: str, value: object, base_lr: float | None) -> float:
    if base_lr is None:
        raise ScheduleError(
            f"{arg}={value!r} is an absolute learning rate, but the base learning rate is not "
            f"known here: pass base_lr=..., or give {entry.absolute[arg]}={arg}/base_lr as a "
            "fraction of the peak learning rate"
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ScheduleError(f"{arg} must be a number, got {value!r}")
    if isinstance(base_lr, bool) or not isinstance(base_lr, (int, float)) or not base_lr > 0:
        raise ScheduleError(f"base_lr must be a positive number, got {base_lr!r}")
    if not 0 <= value < base_lr:
        raise ScheduleError(
            f"{arg} ({value}) must be smaller than the base learning rate ({base_lr}) and >= 0"
        )
    return float(value) / float(base_lr)


def _parameters(
    entry: ScheduleName, given: Mapping[str, Any], base_lr: float | None
) -> dict[str, Any]:
    accepted = entry.accepted()
    if unknown := sorted(set(given) - set(accepted)):
        names = ", ".join(
            f"{a} ({f})" if a != f else a for a, f in accepted.items() if a not in ("provenance",)
        )
        raise ScheduleError(
            f"unknown argument(s) {unknown} for schedule {entry.name!r}; it takes: {names or 'none'}"
        )
    for group in entry.required:
        present = [g for g in group if g in given]
        if len(present) != 1:
            what = "exactly one of" if len(group) > 1 else "the argument"
            raise ScheduleError(
                f"schedule {entry.name!r} needs {what} {', '.join(group)}"
                + (f"; got {', '.join(present)}" if present else "")
            )
    params: dict[str, Any] = {}
    for arg, value in given.items():
        field = accepted[arg]
        if arg in entry.absolute:
            value = _absolute(entry, arg, value, base_lr)
        if field in entry.nested and isinstance(value, Mapping):
            value = schedule_from_spec(value)
        if field in params:
            raise ScheduleError(
                f"schedule {entry.name!r} got {field} twice (from {arg} and another name for it)"
            )
        params[field] = value
    milestones = params.get("milestones", ())
    if not isinstance(milestones, tuple):
        try:
            params["milestones"] = tuple(milestones)
        except TypeError:
            raise ScheduleError(f"milestones must be a sequence, got {milestones!r}") from None
    return params


def schedule_from_spec(spec: Mapping[str, Any]) -> Schedule:
    """Rebuild a schedule from a spec ``{"name": ..., "total_steps": ..., parameters...}``, read
    as :func:`get_schedule` reads its arguments (so ``to_spec()`` output reads back exactly).

    >>> from refinedlr.schedules import Cosine
    >>> s = Cosine(total_steps=100, warmup=0.05, floor=0.1)
    >>> schedule_from_spec(s.to_spec()) == s
    True
    """
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ScheduleError(f"a schedule spec is a mapping with a 'name' key, got {spec!r}")
    depth, node = 0, spec
    while isinstance(node, Mapping) and isinstance(node.get("name"), str):
        entry = _BY_NAME.get(_key(node["name"]))
        nested = entry.nested if entry is not None else ()
        inner = [node[f] for f in nested if isinstance(node.get(f), Mapping)]
        if not inner:
            break
        depth, node = depth + 1, inner[0]
        if depth > limits.MAX_CONTINUATIONS:
            raise ScheduleError(
                f"schedule specs nested more than refinedlr.limits.MAX_CONTINUATIONS="
                f"{limits.MAX_CONTINUATIONS} deep"
            )
    params = {str(k): v for k, v in spec.items() if k != "name"}
    if "total_steps" not in params and "num_training_steps" not in params:
        raise ScheduleError(f"the spec of {spec['name']!r} has no total_steps")
    return get_schedule(spec["name"], **params)
