"""Learning-rate schedules as pure, vectorised functions of the optimizer step.

A schedule maps an optimizer step ``t = 0 .. T-1`` to a multiplier ``s_t`` in ``[0, 1]`` of the
base learning rate and holds ``s_{T-1}`` past ``T``. A warm-up of ``W`` steps gives
``s_t = (t + 1) / (W + 1) * d_0``; the decay part (first value ``d_0``) runs on ``u = t - W`` over
``H = T - W`` steps. The docs page "Schedules and conventions" has the details.

Example:
    >>> s = LinearDecay(total_steps=4)
    >>> s.preview()
    array([1.  , 0.75, 0.5 , 0.25])
    >>> s(10)  # past the horizon: hold the last value
    0.25
    >>> Cosine(total_steps=100, warmup=0.1)(0)  # warm-up never starts at zero
    0.0909...
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import hashlib
import json
import math
import numbers
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeVar, overload

import numpy as np
import numpy.typing as npt

from . import limits

__all__ = [
    "Constant",
    "Continuation",
    "Cosine",
    "CosineWithRestarts",
    "InverseSqrt",
    "InverseTime",
    "LinearDecay",
    "Polynomial",
    "Schedule",
    "ScheduleError",
    "StepWise",
    "Tabulated",
    "WarmupStableDecay",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
AfterHorizon = Literal["hold", "raise"]
Shape = Literal["linear", "cosine", "1-sqrt"]
_SHAPES = ("linear", "cosine", "1-sqrt")

_S = TypeVar("_S", bound="Schedule")
_COMMON = ("total_steps", "warmup", "after_horizon")  # the fields every schedule has


class ScheduleError(ValueError):
    """A schedule was given invalid arguments, or a step it cannot evaluate."""


def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ScheduleError(f"{name} must be an integer, got {value!r}")
    if int(value) < minimum:
        raise ScheduleError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_real(name: str, value: object, interval: str) -> float:
    """``value`` as a finite float in ``interval``, written ``"[0, 1)"``, ``"(0, inf)"``, ..."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ScheduleError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ScheduleError(f"{name} must be finite, got {value!r}")
    low, high = (float(end) for end in interval[1:-1].split(","))
    low_open, high_open = interval[0] == "(", interval[-1] == ")"
    if v < low or (low_open and v == low):
        raise ScheduleError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if v > high or (high_open and v == high):
        raise ScheduleError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return v


def _check_choice(name: str, value: object, choices: tuple[str, ...] = _SHAPES) -> None:
    if value not in choices:
        allowed = ", ".join(map(repr, choices[:-1])) + f" or {choices[-1]!r}"
        raise ScheduleError(f"{name} must be {allowed}, got {value!r}")


def _steps_from(name: str, value: int | float, total_steps: int) -> int:
    """A count given as an ``int`` (steps) or a ``float`` in [0, 1) (fraction of ``total_steps``)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return _check_int(name, value, minimum=0)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return round(_check_real(name, value, "[0, 1)") * total_steps)
    raise ScheduleError(f"{name} must be an int (steps) or a float fraction, got {value!r}")


def _param(default: Any, check: str | int | None = None, *, optional: bool = False) -> Any:
    """A parameter field. ``check``: the interval of a real (``"[0, 1]"``) or the minimum of an
    integer, checked on construction. A spec holds an ``optional`` parameter only when it differs
    from its default (added after the spec format was fixed, so older specs stay valid)."""
    return dataclasses.field(default=default, metadata={"check": check, "optional": optional})


@dataclasses.dataclass(frozen=True)
class Schedule(abc.ABC):
    """Base class: a multiplier ``s_t`` in [0, 1] for steps ``t = 0 .. total_steps - 1``;
    subclasses implement :meth:`_decay` and may override :meth:`_ramp` and :meth:`_validate`."""

    total_steps: int
    warmup: int | float = dataclasses.field(default=0, kw_only=True)
    after_horizon: AfterHorizon = dataclasses.field(default="hold", kw_only=True)

    #: The schedule's canonical name in specs and in :mod:`refinedlr.registry`.
    kind: ClassVar[str] = ""

    def __post_init__(self) -> None:
        _check_int("total_steps", self.total_steps, minimum=1)
        if self.total_steps > limits.MAX_STEPS:
            raise ScheduleError(
                f"total_steps={self.total_steps} is more than refinedlr.limits.MAX_STEPS="
                f"{limits.MAX_STEPS} optimizer steps; raise that limit if you really train longer"
            )
        _check_choice("after_horizon", self.after_horizon, ("hold", "raise"))
        w = _steps_from("warmup", self.warmup, self.total_steps)
        if w >= self.total_steps:
            raise ScheduleError(
                f"warmup ({w} steps) must be shorter than the horizon total_steps={self.total_steps}"
            )
        for f in dataclasses.fields(self):
            if isinstance(check := f.metadata.get("check"), str):
                _check_real(f.name, getattr(self, f.name), check)
            elif check is not None:
                _check_int(f.name, getattr(self, f.name), minimum=check)
        self._validate()

    def _validate(self) -> None:
        """Check subclass parameters; raise :class:`ScheduleError` on bad values."""

    @property
    def warmup_steps(self) -> int:
        """The warm-up length ``W`` in steps."""
        return _steps_from("warmup", self.warmup, self.total_steps)

    @abc.abstractmethod
    def _decay(self, u: IntArray, horizon: int) -> FloatArray:
        """Multiplier after warm-up at local steps ``u`` in ``[0, horizon)``."""

    def _ramp(self, progress: FloatArray, first: float) -> FloatArray:
        """Warm-up multipliers at ``progress = (t + 1) / (W + 1)``: linear from 0 to ``first``."""
        return progress * first

    @functools.cached_property
    def _table(self) -> FloatArray:
        T, W = self.total_steps, self.warmup_steps
        t = np.arange(T, dtype=np.int64)
        H = T - W
        out = np.asarray(self._decay(np.maximum(t - W, 0), H), dtype=np.float64)
        if W > 0:
            first = float(np.asarray(self._decay(np.zeros(1, np.int64), H))[0])
            out[:W] = self._ramp(np.asarray((t[:W] + 1.0) / (W + 1.0), np.float64), first)
        out = np.clip(out, 0.0, 1.0)
        out.setflags(write=False)
        return out

    @overload
    def __call__(self, step: int | np.integer[Any]) -> float: ...

    @overload
    def __call__(self, step: npt.ArrayLike) -> FloatArray | float: ...

    def __call__(self, step: npt.ArrayLike) -> FloatArray | float:
        """The multiplier at ``step`` (an int, or an integer array evaluated element-wise)."""
        if isinstance(step, bool):
            raise ScheduleError(f"step must be an integer, got {step!r}")
        t = np.asarray(step)
        if t.dtype.kind == "f":
            if not np.all(np.isfinite(t)) or not np.all(t == np.round(t)):
                raise ScheduleError(
                    f"steps must be integers (optimizer steps counted from 0), got {step!r}"
                )
        elif t.dtype.kind not in "iu":
            raise ScheduleError(
                f"steps must be integers, got {step!r} of type {type(step).__name__}"
            )
        t = t.astype(np.int64, copy=False)
        if t.size and int(t.min()) < 0:
            raise ScheduleError(f"steps are counted from 0; got a negative step {int(t.min())}")
        T = self.total_steps
        if self.after_horizon == "raise" and t.size and int(t.max()) > T:
            raise ScheduleError(
                f"step {int(t.max())} is past the horizon total_steps={T} "
                "(after_horizon='raise'); steps run from 0 to total_steps - 1"
            )
        out = self._table[np.minimum(t, T - 1)]
        return float(out) if t.ndim == 0 else np.array(out, dtype=np.float64)

    def preview(self) -> FloatArray:
        """The multipliers of steps ``0 .. total_steps - 1`` as a float64 array."""
        return np.array(self._table, dtype=np.float64)

    def with_horizon(self: _S, total_steps: int) -> _S:
        """The same schedule on another horizon; fractions of ``T`` scale, step counts do not."""
        return dataclasses.replace(self, total_steps=total_steps)

    def _params(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in _COMMON or (f.metadata.get("optional") and v == f.default):
                continue
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def to_spec(self) -> dict[str, Any]:
        """A JSON-serialisable description (name, horizon, every parameter), read back by
        :func:`refinedlr.registry.schedule_from_spec`."""
        spec: dict[str, Any] = {"name": self.kind, "total_steps": self.total_steps}
        if self.warmup:
            spec["warmup"] = self.warmup
        if self.after_horizon != "hold":
            spec["after_horizon"] = self.after_horizon
        spec.update(self._params())
        return spec

    def _hash_spec(self, *, include_horizon: bool) -> str:
        spec = self.to_spec()
        spec.pop("provenance", None)
        spec.pop("after_horizon", None)
        if isinstance(spec.get("values"), list):
            values = np.asarray(spec["values"], dtype=np.float64)
            spec["values"] = hashlib.sha256(values.tobytes()).hexdigest()
        if not include_horizon:
            spec.pop("total_steps")
        text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def fingerprint(self) -> str:
        """A 16-hex-digit hash of the shape *and* the horizon (any change shows)."""
        return self._hash_spec(include_horizon=True)

    def shape_fingerprint(self) -> str:
        """A hash of the shape parameters without the horizon (to tell the two kinds of change)."""
        return self._hash_spec(include_horizon=False)


@dataclasses.dataclass(frozen=True)
class Constant(Schedule):
    """``s_t = 1`` (after any warm-up).

    >>> Constant(total_steps=3, warmup=1).preview()
    array([0.5, 1. , 1. ])
    """

    kind: ClassVar[str] = "constant"

    def _decay(self, u: IntArray, horizon: int) -> FloatArray:
        return np.ones(u.shape, dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class LinearDecay(Schedule):
    """Linear decay, the paper's schedule: ``s_t = f + (1 - f) (1 - u/H)``, ``u = t - W``; with no
    warm-up and ``f = 0``, ``1 - t/T`` (torch's ``LinearLR`` to 0, Hugging Face's ``linear``).

    >>> LinearDecay(total_steps=5).preview()
    array([1. , 0.8, 0.6, 0.4, 0.2])
    """

    floor: float = _param(0.0, "[0, 1]")
    kind: ClassVar[str] = "linear"

    def _decay(self, u: IntArray, horizon: int) -> FloatArray:
        return self.floor + (1.0 - self.floor) * (1.0 - u / horizon)


@dataclasses.dataclass(frozen=True)
class Cosine(Schedule):
    """Cosine annealing to a floor: ``s_t = f + (1 - f) (1 + cos(2 pi c u / H)) / 2``, ``c =
    cycles`` as Hugging Face's ``num_cycles`` (``0.5``: one half-wave); torch's
    ``CosineAnnealingLR(T_max=T, eta_min=f * lr)`` on ``t < T``.

    >>> Cosine(total_steps=4, floor=0.1).preview().round(4)
    array([1.    , 0.8682, 0.55  , 0.2318])
    """

    floor: float = _param(0.0, "[0, 1]")
    cycles: float = _param(0.5, "(0, inf)", optional=True)
    kind: ClassVar[str] = "cosine"

    def _decay(self, u: IntArray, horizon: int) -> FloatArray:
        wave = 0.5 * (1.0 + np.cos(np.pi * (2.0 * self.cycles) * u / horizon))
        return self.floor + (1.0 - self.floor) * wave


@dataclasses.dataclass(frozen=True)
class CosineWithRestarts(Schedule):
    """Cosine annealing with ``cycles`` hard restarts (Hugging Face's ``cosine_with_restarts``):
    ``s_t = f + (1 - f) (1 + cos(pi q)) / 2`` with phase ``q = (cycles * u / H) mod 1``.

    >>> CosineWithRestarts(total_steps=6, cycles=2).preview().round(3)
    array([1.  , 0.75, 0.25, 1.  , 0.75, 0.25])
    """

    cycles: int = _param(1, 1)
    floor: float = _param(0.0, "[0, 1]")
    kind: ClassVar[str] = "cosine_with_restarts"

    def _decay(self, u: IntArray, horizon: int) -> FloatArray:
        phase = np.mod(self.cycles * (u / horizon), 1.0)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + np.cos(np.pi * phase))


@dataclasses.dataclass(frozen=True)
class Polynomial(Schedule):
    """Polynomial decay ``s_t = f + (1 - f) (1 - u/H)^p`` (torch's ``PolynomialLR`` for ``f = 0``).

    >>> Polynomial(total_steps=4, power=2.0).preview()
    array([1.    , 0.5625, 0.25  , 0.0625])
    """

    power: float = _param(1.0, "(0, inf)")
    floor: float = _param(0.0, "[0, 1]")
    kind: ClassVar[str] = "polynomial"

    def _decay(self, u: IntArray, horizon: int) -> FloatArray:
        return self.floor + (1.0 - self.floor) * (1.0 - u / horizon) ** self.power


@dataclasses.dataclass(frozen=True)
class StepWise(Schedule):
    """Step-wise decay ``s_t = factor ** (number of milestones m <= t)``, like torch's
    ``MultiStepLR``; ``milestones`` are fractions of ``T`` (floats in (0, 1)) or steps (ints).

    >>> StepWise(total_steps=10, milestones=(0.5, 0.8), factor=0.1).preview()
    array([1.  , 1.  , 1.  , 1.  , 1.  , 0.1 , 0.1 , 0.1 , 0.01, 0.01])
    """

    milestones: tuple[int | float, ...] = (0.5, 0.75)
    factor: float = _param(0.1, "[0, 1]")
    kind: ClassVar[str] = "step"

    def __post_init__(self) -> None:
        if isinstance(self.milestones, (list, np.ndarray)):
            object.__setattr__(self, "milestones", tuple(np.asarray(self.milestones).tolist()))
        super().__post_init__()

    def _validate(self) -> None:
        if not isinstance(self.milestones, tuple):
            raise ScheduleError(f"milestones must be a sequence, got {self.milestones!r}")
        kinds = {isinstance(m, numbers.Integral) for m in self.milestones}
        if len(kinds) > 1:
            raise ScheduleError(
                f"milestones mix steps (ints) and fractions (floats): {list(self.milestones)}"
            )
        steps = self.milestone_steps
        for m, s in zip(self.milestones, steps, strict=True):
            if not 0 < s < self.total_steps:
                raise ScheduleError(
                    f"milestone {m!r} (step {s}) must lie inside the horizon (0, {self.total_steps})"
                )
        if list(steps) != sorted(steps):
            raise ScheduleError(f"milestones must increase, got {list(self.milestones)}")

    @property
    def milestone_steps(self) -> tuple[int, ...]:
        out: list[int] = []
        for m in self.milestones:
            if isinstance(m, bool) or not isinstance(m, numbers.Real):
                raise ScheduleError(f"milestone must be an int step or a float fraction: {m!r}")
            if isinstance(m, numbers.Integral):
                out.append(int(m))
            else:
                out.append(round(_check_real("milestone", m, "(0, 1)") * self.total_steps))
        return tuple(out)

    def _decay(self, u: IntArray, horizon: int) -> FloatArray:
        t = u + (self.total_steps - horizon)
        count = np.searchsorted(np.asarray(self.milestone_steps), t, side="right")
        # one exactly-rounded level per number of milestones passed (Python's pow, not numpy's)
        levels = np.array([float(self.factor) ** k for k in range(len(self.milestones) + 1)])
        return np.asarray(levels[count], dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class InverseTime(Schedule):
    """The classical ``1/t`` schedule with an offset: ``s_t = c / (c + u)``.

    >>> InverseTime(total_steps=4, offset=1.0).preview()
    array([1.        , 0.5       , 0.33333333, 0.25      ])
    """

    offset: float = _param(1.0, "(0, inf)")
    kind: ClassVar[str] = "inverse_time"

    def _decay(self, u: IntArray, horizon: int) -> FloatArray:
        return self.offset / (self.offset + u.astype(np.float64))


@dataclasses.dataclass(frozen=True)
class InverseSqrt(Schedule):
    """Inverse square root ``s_t = sqrt(c / (c + u))`` with timescale ``c`` (``c = 1``: the
    classical ``1/sqrt(t)``; Hugging Face's ``inverse_sqrt`` has ``c`` the warm-up length).

    >>> InverseSqrt(total_steps=4, timescale=1.0).preview()
    array([1.        , 0.70710678, 0.57735027, 0.5       ])
    """

    timescale: float = _param(1.0, "(0, inf)")
    kind: ClassVar[str] = "inverse_sqrt"

    def _decay(self, u: IntArray, horizon: int) -> FloatArray:
        return np.sqrt(self.timescale / (self.timescale + u.astype(np.float64)))


def _shape(name: str, p: FloatArray, cycles: float = 0.5) -> FloatArray:
    """Hugging Face's decay shapes at progress ``p`` in [0, 1], from 1 down to 0."""
    if name == "linear":
        return 1.0 - p
    if name == "cosine":
        return np.asarray(0.5 * (1.0 + np.cos(np.pi * (2.0 * cycles) * p)), dtype=np.float64)
    return np.asarray(1.0 - np.sqrt(p), dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class WarmupStableDecay(Schedule):
    """Warm-up, a constant stage, then a decay over ``decay`` steps (Hugging Face's WSD):
    ``decay`` is a fraction of ``T`` (float in (0, 1]) or a step count ``D``; the decay starts
    ``stable`` steps after the warm-up (default: at ``T - D``). With ``p = (t - start) / D``,
    ``s_t = f + (1 - f) shape(p)``: ``1 - p`` (``linear``), ``(1 + cos(2 pi c p)) / 2``
    (``cosine``, ``c = cycles``) or ``1 - sqrt(p)`` (``1-sqrt``), then the floor ``f``. The warm-up
    is ``f + (1 - f) w(q)``, ``q = (t + 1) / (W + 1)``, ``w`` one of ``q``, ``(1 - cos(pi q)) / 2``
    or ``1 - sqrt(1 - q)`` (``warmup_shape``).

    >>> WarmupStableDecay(total_steps=10, decay=0.4, decay_shape="linear").preview()
    array([1.  , 1.  , 1.  , 1.  , 1.  , 1.  , 1.  , 0.75, 0.5 , 0.25])
    """

    decay: int | float = 0.2
    decay_shape: Shape = "cosine"
    floor: float = _param(0.0, "[0, 1]")
    stable: int | None = _param(None, optional=True)
    warmup_shape: Shape = dataclasses.field(default="linear", metadata={"optional": True})
    cycles: float = _param(0.5, "(0, inf)", optional=True)
    kind: ClassVar[str] = "warmup_stable_decay"

    @property
    def decay_steps(self) -> int:
        """The decay length ``D`` in steps."""
        if isinstance(self.decay, numbers.Integral) and not isinstance(self.decay, bool):
            return _check_int("decay", self.decay, minimum=1)
        frac = _check_real("decay", self.decay, "(0, 1]")
        return max(1, round(frac * self.total_steps))

    def _validate(self) -> None:
        _check_choice("decay_shape", self.decay_shape)
        _check_choice("warmup_shape", self.warmup_shape)
        if self.stable is not None:
            _check_int("stable", self.stable, minimum=0)
        elif self.decay_steps + self.warmup_steps > self.total_steps:
            raise ScheduleError(
                f"warm-up ({self.warmup_steps}) plus decay ({self.decay_steps}) steps exceed the "
                f"horizon total_steps={self.total_steps}"
            )

    def _decay(self, u: IntArray, horizon: int) -> FloatArray:
        D = self.decay_steps
        start = horizon - D if self.stable is None else self.stable
        p = np.clip((u - start) / D, 0.0, 1.0)
        out = self.floor + (1.0 - self.floor) * _shape(self.decay_shape, p, self.cycles)
        return np.where(u >= start + D, self.floor, out)

    def _ramp(self, q: FloatArray, first: float) -> FloatArray:
        if self.warmup_shape == "linear":
            rise = q
        elif self.warmup_shape == "cosine":
            rise = 0.5 * (1.0 - np.cos(np.pi * q))
        else:
            rise = 1.0 - np.sqrt(1.0 - q)
        return np.asarray(self.floor + (1.0 - self.floor) * rise, dtype=np.float64)


@dataclasses.dataclass(frozen=True, eq=False)
class Tabulated(Schedule):
    """A table of multipliers ``v_0 .. v_{L-1}``, read at ``u (L - 1) / (H - 1)`` by linear
    interpolation on any horizon ``H`` (keeping the first and last values). ``provenance`` says
    where the table came from; it is kept in specs but not in fingerprints.

    >>> s = Tabulated(total_steps=5, values=(1.0, 0.5, 0.0))
    >>> s.preview()
    array([1.  , 0.75, 0.5 , 0.25, 0.  ])
    >>> s.with_horizon(3).preview()
    array([1. , 0.5, 0. ])
    """

    values: FloatArray = dataclasses.field(default_factory=lambda: np.ones(1))
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    kind: ClassVar[str] = "tabulated"

    def __post_init__(self) -> None:
        try:
            arr = np.array(self.values, dtype=np.float64, copy=True)
        except (TypeError, ValueError) as exc:
            raise ScheduleError(f"values must be numbers: {exc}") from None
        if arr.ndim != 1 or arr.size == 0:
            raise ScheduleError(f"values must be a non-empty 1-D array, got shape {arr.shape}")
        bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0.0) | (arr > 1.0))
        if bad.size:
            i = int(bad[0])
            raise ScheduleError(
                f"multipliers must lie in [0, 1]; values[{i}] = {float(arr[i])!r} "
                f"({bad.size} bad entries; use Tabulated.from_values(..., normalize=True) for raw LRs)"
            )
        arr.setflags(write=False)
        object.__setattr__(self, "values", arr)
        object.__setattr__(self, "provenance", dict(self.provenance))
        super().__post_init__()

    @classmethod
    def from_values(
        cls,
        values: npt.ArrayLike,
        *,
        total_steps: int | None = None,
        normalize: bool = False,
        provenance: Mapping[str, Any] | None = None,
    ) -> Tabulated:
        """Build from an array (one multiplier per step); ``normalize`` divides by the maximum."""
        arr = np.asarray(values, dtype=np.float64)
        if normalize:
            if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ScheduleError("normalize needs a non-empty 1-D array of finite values >= 0")
            top = float(arr.max())
            if top <= 0:
                raise ScheduleError("normalize needs at least one positive value")
            arr = arr / top
        n = int(arr.shape[0]) if arr.ndim == 1 else 1
        steps = n if total_steps is None else total_steps
        return cls(total_steps=steps, values=arr, provenance=dict(provenance or {}))

    def _decay(self, u: IntArray, horizon: int) -> FloatArray:
        L = self.values.shape[0]
        if L == horizon:
            return np.asarray(self.values[u], dtype=np.float64)
        if L == 1 or horizon == 1:
            return np.full(u.shape, self.values[0], dtype=np.float64)
        x = (u * (L - 1)) / (horizon - 1)  # exact at both ends
        return np.asarray(np.interp(x, np.arange(L, dtype=np.float64), self.values), np.float64)

    def _params(self) -> dict[str, Any]:
        return {"values": self.values.tolist(), "provenance": dict(self.provenance)}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tabulated):
            return NotImplemented
        return (
            self.total_steps == other.total_steps
            and self.warmup == other.warmup
            and self.after_horizon == other.after_horizon
            and np.array_equal(self.values, other.values)
        )

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __repr__(self) -> str:
        v = self.values
        head = np.array2string(v[:4], precision=4, separator=", ")
        more = f" ... ({v.size} values)" if v.size > 4 else ""
        prov = f", provenance={dict(self.provenance)!r}" if self.provenance else ""
        return f"Tabulated(total_steps={self.total_steps}, values={head}{more}{prov})"


@dataclasses.dataclass(frozen=True, eq=False)
class Continuation(Schedule):
    """A run continued from a checkpoint at step ``k`` onto a longer horizon ``T``: steps before
    ``k`` follow ``base`` (the run's own schedule); from ``k`` on the multiplier holds
    ``level``, then a cooldown of ``L = min(cooldown, T - k)`` steps gives
    ``s_t = level * shape((t - (T - L)) / L)``, ``shape`` as in :class:`WarmupStableDecay`'s decay.
    :func:`refinedlr.plan.extend` chooses ``level``, ``cooldown`` and the shape; ``provenance``
    says how (kept in specs, not in fingerprints).

    >>> base = WarmupStableDecay(total_steps=10, decay=0.2, decay_shape="linear")
    >>> Continuation(total_steps=16, base=base, at_step=8, level=0.5, cooldown=4).preview()
    array([1.   , 1.   , 1.   , 1.   , 1.   , 1.   , 1.   , 1.   , 0.5  , 0.5  , 0.5  , 0.5  ,
           0.5  , 0.375, 0.25 , 0.125])
    """

    base: Schedule = dataclasses.field(default_factory=lambda: Constant(1), kw_only=True)
    at_step: int = dataclasses.field(default=1, kw_only=True)
    level: float = dataclasses.field(default=1.0, kw_only=True)
    cooldown: int = dataclasses.field(default=1, kw_only=True)
    cooldown_shape: Shape = dataclasses.field(default="linear", kw_only=True)
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict, kw_only=True)
    kind: ClassVar[str] = "continuation"

    def _validate(self) -> None:
        if not isinstance(self.base, Schedule):
            raise ScheduleError(f"base must be a Schedule, got {type(self.base).__name__}")
        depth, base = 1, self.base
        while isinstance(base, Continuation):
            depth, base = depth + 1, base.base
        if depth > limits.MAX_CONTINUATIONS:
            raise ScheduleError(
                f"continuations nested {depth} deep: at most refinedlr.limits.MAX_CONTINUATIONS="
                f"{limits.MAX_CONTINUATIONS} (plan the extension from the original schedule)"
            )
        k = _check_int("at_step", self.at_step, minimum=1)
        if k >= self.total_steps:
            raise ScheduleError(
                f"at_step={k} must come before the new horizon total_steps={self.total_steps}"
            )
        if k > self.base.total_steps:
            raise ScheduleError(
                f"at_step={k} is past the end of the run being continued "
                f"({self.base.total_steps} steps)"
            )
        if self.warmup:
            raise ScheduleError("a continuation has no warm-up of its own (its base has one)")
        _check_real("level", self.level, "(0, 1]")
        _check_int("cooldown", self.cooldown, minimum=1)
        _check_choice("cooldown_shape", self.cooldown_shape)
        object.__setattr__(self, "provenance", dict(self.provenance))

    @property
    def cooldown_steps(self) -> int:
        """The cooldown length ``L`` in steps (at most the steps after the checkpoint)."""
        return min(self.cooldown, self.total_steps - self.at_step)

    def _decay(self, u: IntArray, horizon: int) -> FloatArray:
        k, L = self.at_step, self.cooldown_steps
        start = self.total_steps - L
        before = np.asarray(self.base(np.minimum(u, k - 1)), dtype=np.float64)
        cool = self.level * _shape(self.cooldown_shape, np.clip((u - start) / L, 0.0, 1.0))
        return np.where(u < k, before, np.where(u < start, self.level, cool))

    def _params(self) -> dict[str, Any]:
        nested = {"base": self.base.to_spec(), "provenance": dict(self.provenance)}
        return {**super()._params(), **nested}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Continuation):
            return NotImplemented
        return (
            self.fingerprint() == other.fingerprint() and self.after_horizon == other.after_horizon
        )

    def __hash__(self) -> int:
        return hash(self.fingerprint())
