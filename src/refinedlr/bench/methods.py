"""Schedule-making methods for the benchmarks: a registry a later study can extend.

A *method* turns a :class:`MethodContext` (the horizon, the optimizer and, for methods that need
it, the record of the best linear-decay run) into a :class:`~refinedlr.schedules.Schedule`. The
convex benchmark tunes the peak LR of every method on the same LR grid; methods with
``needs_linear=True`` are built once the linear-decay sweep has settled, from the per-step
gradient norms of linear decay at its best LR (mean over seeds).

Registering a new method (e.g. a variant of refinement) makes it available to
``refinedlr bench convex --methods ...``::

    >>> import numpy as np
    >>> from refinedlr.refinement import refine
    >>> def make(ctx):
    ...     return refine(ctx.linear_norms[ctx.norm_kind], tau=0.25, norm=ctx.norm_kind, power=1.5)
    >>> m = register_method(Method("refined-p1.5", make, needs_linear=True,
    ...                            description="refinement with weights g^-1.5"))
    >>> ctx = MethodContext(total_steps=8, steps_per_epoch=4, optimizer="sgd",
    ...                     linear_norms={"l1": np.ones(8), "l2": np.ones(8)}, linear_lr=0.1)
    >>> get_method("refined-p1.5").build(ctx).preview().round(3)
    array([1.   , 0.857, 0.714, 0.571, 0.429, 0.286, 0.143, 0.   ])
    >>> _ = unregister_method("refined-p1.5")
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from refinedlr.refinement import CollapseWarning, refine_details
from refinedlr.registry import get_schedule
from refinedlr.schedules import Schedule, Tabulated

__all__ = [
    "DEFAULT_METHODS",
    "METHODS",
    "Method",
    "MethodContext",
    "get_method",
    "register_method",
    "unregister_method",
]

FloatArray = npt.NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class MethodContext:
    """What a method may use to build its schedule.

    Attributes:
        total_steps: the horizon ``T`` (optimizer steps).
        steps_per_epoch: optimizer steps per epoch (for epoch-based schedules such as 1/t).
        optimizer: ``"adam"`` or ``"sgd"``.
        linear_norms: for ``needs_linear`` methods, the per-step gradient norms of the best
            linear-decay run, mean over seeds: ``{"l1": [T], "l2": [T]}``; else ``None``.
        linear_lr: that run's base LR.
        linear_norms_per_seed: the same norms per seed, ``[S, T, 2]`` (l1, l2), if available.
    """

    total_steps: int
    steps_per_epoch: int
    optimizer: str
    linear_norms: Mapping[str, FloatArray] | None = None
    linear_lr: float | None = None
    linear_norms_per_seed: npt.NDArray[np.floating[Any]] | None = None

    @property
    def norm_kind(self) -> str:
        """The paper's norm for this optimizer: ``"l1"`` for Adam (Alg. 2), ``"l2"`` for SGD (Alg. 1)."""
        return "l1" if self.optimizer == "adam" else "l2"


@dataclasses.dataclass(frozen=True)
class Method:
    """A named way to make a schedule.

    Attributes:
        name: registry key and the label in tables.
        build: ``MethodContext -> Schedule`` (its horizon must be ``ctx.total_steps``).
        needs_linear: build only after the linear-decay sweep (gets ``linear_norms``).
        description: one line for the report.
    """

    name: str
    build: Callable[[MethodContext], Schedule]
    needs_linear: bool = False
    description: str = ""


METHODS: dict[str, Method] = {}


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Add ``method`` to :data:`METHODS` (``replace=True`` to overwrite a name)."""
    if method.name in METHODS and not replace:
        raise ValueError(f"a method named {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def unregister_method(name: str) -> Method:
    """Remove and return a registered method."""
    return METHODS.pop(name)


def get_method(name: str) -> Method:
    """The registered method ``name`` (``KeyError`` listing the known names otherwise)."""
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None


def _refined(tau: float) -> Callable[[MethodContext], Schedule]:
    def build(ctx: MethodContext) -> Schedule:
        if ctx.linear_norms is None:
            raise ValueError("refinement needs the norms of the best linear-decay run")
        kind = ctx.norm_kind
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CollapseWarning)
            details = refine_details(
                np.asarray(ctx.linear_norms[kind], dtype=np.float64),
                tau=tau,
                norm=kind,  # type: ignore[arg-type]
                total_steps=ctx.total_steps,
            )
        s = details.schedule
        collapse = any(issubclass(w.category, CollapseWarning) for w in caught)
        return Tabulated(
            total_steps=s.total_steps,
            values=s.values,
            provenance={**s.provenance, "collapse": collapse},
        )

    return build


def _fixed(name: str, **kw: Any) -> Callable[[MethodContext], Schedule]:
    return lambda ctx: get_schedule(name, ctx.total_steps, **kw)


def _per_epoch(name: str) -> Callable[[MethodContext], Schedule]:
    return lambda ctx: get_schedule(name, ctx.total_steps, offset=float(ctx.steps_per_epoch))


for _m in (
    Method("constant", _fixed("constant"), description="s_t = 1"),
    Method(
        "1/t",
        _per_epoch("1/t"),
        description="s_t = 1 / (1 + t/E), E = steps per epoch (LR / (1 + epoch))",
    ),
    Method(
        "1/sqrt_t",
        _per_epoch("1/sqrt_t"),
        description="s_t = 1 / sqrt(1 + t/E), E = steps per epoch",
    ),
    Method(
        "step",
        _fixed("step", milestones=(0.5, 0.75), factor=0.1),
        description="x0.1 at 50% and 75% of training",
    ),
    Method("cosine", _fixed("cosine"), description="(1 + cos(pi t/T)) / 2"),
    Method(
        "wsd",
        _fixed("warmup_stable_decay", decay=0.2, decay_shape="linear"),
        description="constant, then linear decay to 0 over the last 20% (no warm-up)",
    ),
    Method("linear", _fixed("linear"), description="1 - t/T (the paper's default)"),
    Method(
        "refined-0.1",
        _refined(0.1),
        needs_linear=True,
        description="refinement (Adam: Alg. 2, l1; SGD: Alg. 1, l2), tau = 0.1",
    ),
    Method(
        "refined-0.5",
        _refined(0.5),
        needs_linear=True,
        description="refinement (Adam: Alg. 2, l1; SGD: Alg. 1, l2), tau = 0.5",
    ),
):
    register_method(_m)

#: The methods run by default, in table order (linear decay is the reference).
DEFAULT_METHODS: tuple[str, ...] = tuple(METHODS)


# ----------------------------------------------------------------------------------------------
# candidates of the refinement study (issue 7; ``refinedlr bench study``). Registered after
# DEFAULT_METHODS, so ``refinedlr bench convex`` runs them only when asked (``--methods``).


def _linear_record(ctx: MethodContext) -> tuple[str, FloatArray]:
    if ctx.linear_norms is None:
        raise ValueError("refinement needs the norms of the best linear-decay run")
    kind = ctx.norm_kind
    return kind, np.asarray(ctx.linear_norms[kind], dtype=np.float64)


def _tabulated(ctx: MethodContext, values: FloatArray, **prov: Any) -> Tabulated:
    return Tabulated(total_steps=ctx.total_steps, values=values, provenance=prov)


def _variant(tau: float = 0.1, **kw: Any) -> Callable[[MethodContext], Schedule]:
    from refinedlr.bench.study_variants import variant_values

    def build(ctx: MethodContext) -> Schedule:
        kind, n = _linear_record(ctx)
        v = variant_values(n, norm=kind, tau=tau, **kw)
        return _tabulated(ctx, v, method="study-variant", norm=kind, tau=tau, **kw)

    return build


def bound_family(ctx: MethodContext) -> dict[str, FloatArray]:
    """The shapes ``refined-bound-select`` chooses from (on the source record's length)."""
    from refinedlr.bench.study_variants import variant_values

    kind, n = _linear_record(ctx)
    T = n.shape[0]
    fixed: tuple[tuple[str, dict[str, Any]], ...] = (
        ("linear", {}),
        ("cosine", {}),
        ("constant", {}),
        ("warmup_stable_decay", {"decay": 0.2, "decay_shape": "linear"}),
    )
    shapes = {name: get_schedule(name, T, **kw).preview() for name, kw in fixed}
    for p in (0.5, 1.5, 2.0, 3.0):
        shapes[f"poly-{p:g}"] = get_schedule("polynomial", T, power=p).preview()
    variants: tuple[tuple[str, dict[str, Any]], ...] = (
        ("paper-0.1", {"tau": 0.1}),
        ("paper-0.5", {"tau": 0.5}),
        ("power-0.5", {"strength": 0.5}),
        ("mix-0.5", {"mix": 0.5}),
        ("floor-med", {"floor": 0.5}),
        ("floor-q25", {"floor": 0.25}),
        ("clip-2", {"clip": 2.0}),
        ("warmup-linear", {"warmup_linear": True}),
    )
    for name, kw in variants:
        shapes[name] = variant_values(n, norm=kind, **{"tau": 0.1, **kw})
    return shapes


def _bound_select(ctx: MethodContext) -> Schedule:
    from refinedlr.bench.study_variants import bound_select

    kind, n = _linear_record(ctx)
    shapes = bound_family(ctx)
    name = bound_select(shapes, n)
    return _tabulated(ctx, shapes[name], method="bound-select", norm=kind, selected=name)


def _bound_kappa(kappa: float) -> Callable[[MethodContext], Schedule]:
    def build(ctx: MethodContext) -> Schedule:
        from refinedlr.bench.study_variants import bound_conservative

        kind, n = _linear_record(ctx)
        q, v = bound_conservative(n, norm=kind, tau=0.1, kappa=kappa)
        return _tabulated(ctx, v, method="bound-conservative", norm=kind, kappa=kappa, floor=q)

    return build


def _auto_tau(ctx: MethodContext) -> Schedule:
    from refinedlr.bench.study_variants import auto_tau, variant_values

    kind, n = _linear_record(ctx)
    if ctx.linear_norms_per_seed is None:
        raise ValueError("auto-tau needs the per-seed norms of the linear run")
    col = 0 if kind == "l1" else 1
    per_seed = np.asarray(ctx.linear_norms_per_seed, dtype=np.float64)[:, :, col]
    tau = auto_tau(per_seed, norm=kind)
    return _tabulated(ctx, variant_values(n, norm=kind, tau=tau), method="auto-tau", tau=tau)


for _m in (
    Method(
        "refined-floor-med",
        _variant(floor=0.5),
        needs_linear=True,
        description="bounded weights: smoothed norms floored at their median (tau 0.1)",
    ),
    Method(
        "refined-floor-q25",
        _variant(floor=0.25),
        needs_linear=True,
        description="bounded weights: smoothed norms floored at their 25% quantile (tau 0.1)",
    ),
    Method(
        "refined-clip-2",
        _variant(clip=2.0),
        needs_linear=True,
        description="bounded weights: smoothed norms clipped to [median/2, 2 median] (tau 0.1)",
    ),
    Method(
        "refined-power-0.5",
        _variant(strength=0.5),
        needs_linear=True,
        description="partial refinement: weights g^(-p/2) (half the paper's power; tau 0.1)",
    ),
    Method(
        "refined-mix-0.5",
        _variant(mix=0.5),
        needs_linear=True,
        description="partial refinement: (linear + refined) / 2, renormalised (tau 0.1)",
    ),
    Method(
        "refined-warmup-linear",
        _variant(warmup_linear=True),
        needs_linear=True,
        description="the refined warm-up (tau 0.1) up to its peak, then linear decay to 0",
    ),
    Method(
        "refined-envelope",
        _variant(envelope=True),
        needs_linear=True,
        description=(
            "the refined warm-up (tau 0.1) under linear decay's line: min(warm-up ramp, 1 - t/T)"
        ),
    ),
    Method(
        "refined-anti",
        _variant(strength=-1.0),
        needs_linear=True,
        description="anti-refinement: weights g^(+p) instead of g^(-p) (tau 0.1)",
    ),
    Method(
        "refined-bound-select",
        _bound_select,
        needs_linear=True,
        description="the shape with the smallest last-iterate bound on the record (16 shapes)",
    ),
    Method(
        "refined-bound-kappa-0.5",
        _bound_kappa(0.5),
        needs_linear=True,
        description=(
            "partial refinement chosen by the bound: the floor nearest to linear decay that "
            "keeps half the paper's bound gain"
        ),
    ),
    Method(
        "refined-auto-tau",
        _auto_tau,
        needs_linear=True,
        description="tau chosen by the bound across seeds (leave one seed out)",
    ),
):
    register_method(_m)

#: The candidate methods of the refinement study that need only the linear run's record.
STUDY_METHODS: tuple[str, ...] = tuple(m for m in METHODS if m not in DEFAULT_METHODS)
