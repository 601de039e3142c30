"""The schedule arms of the convex suite: named ways to make a schedule, as one table.

An *arm* turns an :class:`ArmContext` (the horizon, the optimizer and, for arms that need it, the
record of the best linear-decay run) into a :class:`refinedlr.Schedule`. The convex suite tunes
the peak LR of every arm on the same LR grid; arms with ``needs_linear=True`` are built once the
linear-decay sweep has settled, from the per-step gradient norms of linear decay at its best LR
(mean over seeds).

:data:`SCHEDULE_ARMS` holds the table: :data:`DEFAULT_ARMS` (what ``refinedlr bench convex`` runs
by default, linear decay being the reference) and :data:`CANDIDATE_ARMS` (the refinement study's
candidate variants, run by the convex suite only when named with ``--methods``).

An arm may change the optimizer as well: ``schedule_free=True`` trains the schedule-free form of
Adam or SGD (:func:`refinedlr_bench.logreg.train_batched`), and its "schedule" is the LR sequence
that optimizer is given (constant after its warm-up). Arms train in batched tensors per
``batch`` group: the arms added after the first committed results (:data:`ALTERNATIVE_ARMS`:
schedule-free, cosine to 10%, WSD with a 1-sqrt cooldown) form their own group, so adding them
left every earlier arm's batches, and so its numbers, bit for bit as they were. The same holds
for :data:`EQUAL_TERMS_ARMS` (issue 20: SGD with momentum, iterate averaging, schedule-free's
parts and warm-ups, Adam's beta2 at 0.999), whose arms may also change the optimizer's settings
(:attr:`ScheduleArm.momentum`, ``averaging``, ``sf_beta``, ``sf_eval``, ``betas``) and run
with one optimizer only. Registering a new arm makes it available to
``refinedlr bench convex --methods ...``::

    >>> from refinedlr import refine
    >>> def make(ctx):
    ...     return refine(ctx.linear_norms[ctx.norm_kind], tau=0.25, norm=ctx.norm_kind, power=1.5)
    >>> arm = register_schedule_arm(ScheduleArm("refined-p1.5", make, needs_linear=True,
    ...                                         description="refinement with weights g^-1.5"))
    >>> ctx = ArmContext(total_steps=8, steps_per_epoch=4, optimizer="sgd",
    ...                  linear_norms={"l1": np.ones(8), "l2": np.ones(8)}, linear_lr=0.1)
    >>> get_schedule_arm("refined-p1.5").build(ctx).preview().round(3)
    array([1.   , 0.857, 0.714, 0.571, 0.429, 0.286, 0.143, 0.   ])
    >>> _ = unregister_schedule_arm("refined-p1.5")
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from refinedlr import Schedule, Tabulated, get_schedule, refine_details
from refinedlr.refinement import CollapseWarning

from refinedlr_bench.logreg import (
    ADAM_BETAS,
    ema_weights,
    schedule_free_averaging,
    tail_average_weights,
)
from refinedlr_bench.refinement_variants import (
    auto_tau,
    bound_conservative,
    bound_select,
    variant_values,
)

__all__ = [
    "ALTERNATIVE_ARMS",
    "CANDIDATE_ARMS",
    "DEFAULT_ARMS",
    "EQUAL_TERMS_ARMS",
    "SCHEDULE_ARMS",
    "SF_WARMUP",
    "ArmContext",
    "Averaging",
    "ScheduleArm",
    "bound_family",
    "get_schedule_arm",
    "register_schedule_arm",
    "unregister_schedule_arm",
]

FloatArray = npt.NDArray[np.float64]
Build = Callable[["ArmContext"], Schedule]

#: The schedule-free arm's warm-up, a fraction of the horizon. The ``schedulefree`` README
#: recommends a warm-up without giving a length; 5% is the deep suite's warm-up for every arm.
SF_WARMUP = 0.05


@dataclasses.dataclass(frozen=True)
class ArmContext:
    """What an arm may use to build its schedule.

    Attributes:
        total_steps: the horizon ``T`` (optimizer steps).
        steps_per_epoch: optimizer steps per epoch (for epoch-based schedules such as 1/t).
        optimizer: ``"adam"`` or ``"sgd"``.
        linear_norms: for ``needs_linear`` arms, the per-step gradient norms of the best
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

    def linear_record(self) -> tuple[str, FloatArray]:
        """``(norm kind, the linear run's mean norms of that kind)``."""
        if self.linear_norms is None:
            raise ValueError("refinement needs the norms of the best linear-decay run")
        kind = self.norm_kind
        return kind, np.asarray(self.linear_norms[kind], dtype=np.float64)


@dataclasses.dataclass(frozen=True)
class ScheduleArm:
    """A named way to make a schedule.

    Attributes:
        name: table key and the label in reports.
        build: ``ArmContext -> Schedule`` (its horizon must be ``ctx.total_steps``).
        needs_linear: build only after the linear-decay sweep (gets ``linear_norms``).
        description: one line for the report.
        schedule_free: train the schedule-free form of the optimizer; ``build`` gives its LR
            sequence.
        batch: the batch group: configurations of arms in different groups never share a
            batched tensor.
        optimizers: the optimizers the arm runs with (``None``: every one).
        source: for ``needs_linear`` arms, the arm whose best run's record they are built from
            (linear decay by default; it is recorded).
        momentum: heavy-ball momentum of SGD (as ``torch.optim.SGD``).
        averaging: score the average of the iterates instead of the last one (:class:`Averaging`).
        sf_beta: schedule-free's interpolation constant (``None``: the default).
        sf_eval: where a schedule-free arm is scored: ``"x"`` (the average) or ``"z"``.
        betas: Adam's betas for this arm (``None``: the protocol's); arms that change them need a
            batch group of their own.
        family: ``"default"`` for the schedules the suite compares, ``"equal-terms"`` for the
            momentum, averaging and schedule-free variants of issue 20 (reported apart).
        versus: the arm this one varies (reports compare the two directly).
        reference: linear decay with this arm's optimizer settings (reports compare the two).
    """

    name: str
    build: Build
    needs_linear: bool = False
    description: str = ""
    schedule_free: bool = False
    batch: str = "main"
    optimizers: tuple[str, ...] | None = None
    source: str = "linear"
    momentum: float = 0.0
    averaging: Averaging | None = None
    sf_beta: float | None = None
    sf_eval: str = "x"
    betas: tuple[float, float] | None = None
    family: str = "default"
    versus: str = ""
    reference: str = "linear"

    @property
    def plain(self) -> bool:
        """A schedule of the protocol's plain optimizer, scored at its last iterate: the arms
        whose last-iterate bound is that of their schedule."""
        return not (self.schedule_free or self.momentum or self.averaging or self.betas)

    @property
    def settings(self) -> str:
        """What the arm changes besides its schedule, as a short tag (``""`` for none); part of
        its cached results' key."""
        parts = [
            f"{k}={v}"
            for k, v in (
                ("momentum", self.momentum),
                ("averaging", self.averaging),
                ("sf_beta", self.sf_beta),
                ("betas", self.betas),
            )
            if v
        ]
        return ",".join(parts + ([f"eval={self.sf_eval}"] if self.sf_eval != "x" else []))

    def runs_with(self, optimizer: str) -> bool:
        """Whether the arm runs with ``optimizer``."""
        return self.optimizers is None or optimizer in self.optimizers


@dataclasses.dataclass(frozen=True)
class Averaging:
    """Where an arm is scored: at an average of its iterates instead of the last one.

    ``kind``: ``"tail"`` (the plain mean of the last ``fraction`` of the iterates), ``"ema"``
    (an exponential moving average with time constant ``fraction * T`` steps, as
    ``torch.optim.swa_utils.get_ema_multi_avg_fn(decay)`` with ``decay = 1 - 1 / (fraction T)``
    keeps it) or ``"schedule-free"`` (schedule-free's own average: weights ``lr_t^2`` with the
    running maximum LR, from the start).

    >>> Averaging("ema", 0.1).weights(np.ones(50))[:3]
    array([1. , 0.2, 0.2])
    """

    kind: str
    fraction: float = 1.0

    def __str__(self) -> str:
        return f"{self.kind}-{self.fraction:g}"

    def weights(self, multipliers: FloatArray) -> FloatArray:
        """The averaging weights of :func:`~refinedlr_bench.logreg.train_batched` for a run
        with these LR multipliers."""
        T = multipliers.shape[0]
        if self.kind == "tail":
            return tail_average_weights(T, self.fraction)
        if self.kind == "ema":
            return ema_weights(T, max(0.0, 1.0 - 1.0 / (self.fraction * T)))
        if self.kind == "schedule-free":
            return np.asarray(schedule_free_averaging(multipliers[None])[0], dtype=np.float64)
        raise ValueError(f"unknown averaging {self.kind!r}")


# ----------------------------------------------------------------------------------------------
# how the arms make their schedules


def _fixed(name: str, **kw: Any) -> Build:
    return lambda ctx: get_schedule(name, ctx.total_steps, **kw)


def _per_epoch(name: str) -> Build:
    return lambda ctx: get_schedule(name, ctx.total_steps, offset=float(ctx.steps_per_epoch))


def _refined(tau: float) -> Build:
    """The paper's refinement of the linear run's record (collapse recorded in the provenance)."""

    def build(ctx: ArmContext) -> Schedule:
        kind, norms = ctx.linear_record()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CollapseWarning)
            details = refine_details(norms, tau=tau, norm=kind, total_steps=ctx.total_steps)  # type: ignore[arg-type]
        s = details.schedule
        collapse = any(issubclass(w.category, CollapseWarning) for w in caught)
        return Tabulated(
            total_steps=s.total_steps,
            values=s.values,
            provenance={**s.provenance, "collapse": collapse},
        )

    return build


def _schedule_free_lrs(warmup: float = SF_WARMUP) -> Build:
    """The LR sequence of the package's schedule-free optimizers with ``warmup_steps = W``
    (``round(warmup * T)``): ``(k + 1) / W`` for ``k < W``, then 1, which is the library's
    warm-up of ``W - 1`` steps (``(t + 1) / (W' + 1)``)."""

    def build(ctx: ArmContext) -> Schedule:
        W = round(warmup * ctx.total_steps)
        return get_schedule("constant", ctx.total_steps, warmup=max(W - 1, 0))

    return build


def _tabulated(ctx: ArmContext, values: FloatArray, **provenance: Any) -> Tabulated:
    return Tabulated(total_steps=ctx.total_steps, values=values, provenance=provenance)


def _variant(tau: float = 0.1, **kw: Any) -> Build:
    """A variant of refinement (:func:`~.refinement_variants.variant_values`) of the record."""

    def build(ctx: ArmContext) -> Schedule:
        kind, n = ctx.linear_record()
        v = variant_values(n, norm=kind, tau=tau, **kw)
        return _tabulated(ctx, v, method="study-variant", norm=kind, tau=tau, **kw)

    return build


#: The shapes ``refined-bound-select`` chooses from: fixed schedules and variants of refinement.
_BOUND_FAMILY_FIXED: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("linear", "linear", {}),
    ("cosine", "cosine", {}),
    ("constant", "constant", {}),
    ("warmup_stable_decay", "warmup_stable_decay", {"decay": 0.2, "decay_shape": "linear"}),
    *((f"poly-{p:g}", "polynomial", {"power": p}) for p in (0.5, 1.5, 2.0, 3.0)),
)
_BOUND_FAMILY_VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("paper-0.1", {"tau": 0.1}),
    ("paper-0.5", {"tau": 0.5}),
    ("power-0.5", {"strength": 0.5}),
    ("mix-0.5", {"mix": 0.5}),
    ("floor-med", {"floor": 0.5}),
    ("floor-q25", {"floor": 0.25}),
    ("clip-2", {"clip": 2.0}),
    ("warmup-linear", {"warmup_linear": True}),
)


def bound_family(ctx: ArmContext) -> dict[str, FloatArray]:
    """The 16 shapes ``refined-bound-select`` chooses from (on the source record's length)."""
    kind, n = ctx.linear_record()
    T = n.shape[0]
    shapes = {
        label: get_schedule(name, T, **kw).preview() for label, name, kw in _BOUND_FAMILY_FIXED
    }
    for label, kw in _BOUND_FAMILY_VARIANTS:
        shapes[label] = variant_values(n, norm=kind, **{"tau": 0.1, **kw})
    return shapes


def _bound_select(ctx: ArmContext) -> Schedule:
    kind, n = ctx.linear_record()
    shapes = bound_family(ctx)
    name = bound_select(shapes, n)
    return _tabulated(ctx, shapes[name], method="bound-select", norm=kind, selected=name)


def _bound_kappa(kappa: float) -> Build:
    def build(ctx: ArmContext) -> Schedule:
        kind, n = ctx.linear_record()
        q, v = bound_conservative(n, norm=kind, tau=0.1, kappa=kappa)
        return _tabulated(ctx, v, method="bound-conservative", norm=kind, kappa=kappa, floor=q)

    return build


def _auto_tau(ctx: ArmContext) -> Schedule:
    kind, n = ctx.linear_record()
    if ctx.linear_norms_per_seed is None:
        raise ValueError("auto-tau needs the per-seed norms of the linear run")
    col = 0 if kind == "l1" else 1
    per_seed = np.asarray(ctx.linear_norms_per_seed, dtype=np.float64)[:, :, col]
    tau = auto_tau(per_seed, norm=kind)
    return _tabulated(ctx, variant_values(n, norm=kind, tau=tau), method="auto-tau", tau=tau)


# ----------------------------------------------------------------------------------------------
# the table

_REFINED = "refinement (Adam: Alg. 2, l1; SGD: Alg. 1, l2), tau = "

#: name, how the schedule is made, description: schedules that need no record
_FIXED_ROWS: tuple[tuple[str, Build, str], ...] = (
    ("constant", _fixed("constant"), "s_t = 1"),
    ("1/t", _per_epoch("1/t"), "s_t = 1 / (1 + t/E), E = steps per epoch (LR / (1 + epoch))"),
    ("1/sqrt_t", _per_epoch("1/sqrt_t"), "s_t = 1 / sqrt(1 + t/E), E = steps per epoch"),
    ("step", _fixed("step", milestones=(0.5, 0.75), factor=0.1), "x0.1 at 50% and 75% of training"),
    ("cosine", _fixed("cosine"), "(1 + cos(pi t/T)) / 2"),
    (
        "wsd",
        _fixed("warmup_stable_decay", decay=0.2, decay_shape="linear"),
        "constant, then linear decay to 0 over the last 20% (no warm-up)",
    ),
    ("linear", _fixed("linear"), "1 - t/T (the paper's default)"),
)

#: the same for the schedules made from the linear run's record (the paper's refinement)
_REFINED_ROWS: tuple[tuple[str, Build, str], ...] = (
    ("refined-0.1", _refined(0.1), _REFINED + "0.1"),
    ("refined-0.5", _refined(0.5), _REFINED + "0.5"),
)

#: the refinement study's candidate variants (issue 7), all made from the linear run's record
_CANDIDATE_ROWS: tuple[tuple[str, Build, str], ...] = (
    (
        "refined-floor-med",
        _variant(floor=0.5),
        "bounded weights: smoothed norms floored at their median (tau 0.1)",
    ),
    (
        "refined-floor-q25",
        _variant(floor=0.25),
        "bounded weights: smoothed norms floored at their 25% quantile (tau 0.1)",
    ),
    (
        "refined-clip-2",
        _variant(clip=2.0),
        "bounded weights: smoothed norms clipped to [median/2, 2 median] (tau 0.1)",
    ),
    (
        "refined-power-0.5",
        _variant(strength=0.5),
        "partial refinement: weights g^(-p/2) (half the paper's power; tau 0.1)",
    ),
    (
        "refined-mix-0.5",
        _variant(mix=0.5),
        "partial refinement: (linear + refined) / 2, renormalised (tau 0.1)",
    ),
    (
        "refined-warmup-linear",
        _variant(warmup_linear=True),
        "the refined warm-up (tau 0.1) up to its peak, then linear decay to 0",
    ),
    (
        "refined-envelope",
        _variant(envelope=True),
        "the refined warm-up (tau 0.1) under linear decay's line: min(warm-up ramp, 1 - t/T)",
    ),
    (
        "refined-anti",
        _variant(strength=-1.0),
        "anti-refinement: weights g^(+p) instead of g^(-p) (tau 0.1)",
    ),
    (
        "refined-bound-select",
        _bound_select,
        "the shape with the smallest last-iterate bound on the record (16 shapes)",
    ),
    (
        "refined-bound-kappa-0.5",
        _bound_kappa(0.5),
        "partial refinement chosen by the bound: the floor nearest to linear decay that "
        "keeps half the paper's bound gain",
    ),
    ("refined-auto-tau", _auto_tau, "tau chosen by the bound across seeds (leave one seed out)"),
)


#: what a user would pick instead of linear decay or refinement (issue 14): their own batch group
_ALTERNATIVE_ROWS: tuple[ScheduleArm, ...] = (
    ScheduleArm(
        "cosine-10",
        _fixed("cosine", floor=0.1),
        description="cosine to 10% of the peak: 0.1 + 0.9 (1 + cos(pi t/T)) / 2 (no warm-up)",
        batch="alternatives",
    ),
    ScheduleArm(
        "wsd-1sqrt",
        _fixed("warmup_stable_decay", decay=0.2, decay_shape="1-sqrt"),
        description="constant, then the 1-sqrt cooldown 1 - sqrt(q) to 0 over the last 20% "
        "(no warm-up)",
        batch="alternatives",
    ),
    ScheduleArm(
        "schedule-free",
        _schedule_free_lrs(),
        description="schedule-free Adam / SGD (Defazio et al. 2024, as the `schedulefree` "
        "package computes it; SGD beta 0.9, Adam beta = beta1) at a constant LR after the "
        f"package's linear warm-up over {SF_WARMUP:.0%} of the steps, evaluated at the averaged "
        "point x",
        schedule_free=True,
        batch="alternatives",
    ),
)


#: Momentum, iterate averaging and schedule-free's parts on equal terms (issue 20), in batch groups
#: of their own (the arms that change Adam's betas in one per betas).
_MOMENTUM = "SGD with heavy-ball momentum 0.9 (as torch.optim.SGD)"
_TAIL, _EMA = Averaging("tail", 0.5), Averaging("ema", 0.1)
_SF = "schedule-free (as the `schedule-free` arm)"
_EQUAL_TERMS_ROWS: tuple[ScheduleArm, ...] = (
    *(
        ScheduleArm(
            f"{name}-mom",
            _fixed(sched, **kw),
            description=f"{_MOMENTUM}, {text}",
            batch="equal-terms",
            optimizers=("sgd",),
            momentum=0.9,
            family="equal-terms",
            versus=name,
            reference="linear-mom",
        )
        for name, sched, kw, text in (
            ("linear", "linear", {}, "linear decay"),
            ("cosine", "cosine", {}, "cosine to 0"),
            (
                "wsd-1sqrt",
                "warmup_stable_decay",
                {"decay": 0.2, "decay_shape": "1-sqrt"},
                "WSD with the 1-sqrt cooldown over the last 20%",
            ),
        )
    ),
    *(
        ScheduleArm(
            f"{name}-{avg.kind}",
            _fixed(name),
            description=f"{name} LR, scored at "
            + (
                "the mean of the iterates of the last half of training (a tail average)"
                if avg.kind == "tail"
                else "an EMA of the iterates updated every step, time constant 10% of the "
                "steps (decay 1 - 10/T; torch's get_ema_multi_avg_fn)"
            ),
            batch="equal-terms",
            averaging=avg,
            family="equal-terms",
            versus=name,
        )
        for name in ("linear", "constant")
        for avg in (_TAIL, _EMA)
    ),
    ScheduleArm(
        "sf-beta-0",
        _schedule_free_lrs(),
        description=f"{_SF} with beta 0: the gradient at the averaged sequence's base point z "
        "(no interpolation), so the plain optimizer (Adam with beta1 = 0, as schedule-free "
        "AdamW's base step) at the same warm-up and constant LR, scored at schedule-free's "
        "average (weights lr^2, from the start)",
        batch="equal-terms-beta1-0",
        averaging=Averaging("schedule-free"),
        betas=(0.0, ADAM_BETAS[1]),
        family="equal-terms",
        versus="schedule-free",
    ),
    *(
        ScheduleArm(
            f"sf-beta-{beta:g}",
            _schedule_free_lrs(),
            description=f"{_SF} with interpolation constant beta = {beta:g} (default 0.9)",
            schedule_free=True,
            batch="equal-terms",
            sf_beta=beta,
            family="equal-terms",
            versus="schedule-free",
        )
        for beta in (0.5, 0.95)
    ),
    ScheduleArm(
        "sf-at-z",
        _schedule_free_lrs(),
        description=f"{_SF}, scored at its base sequence z instead of the average x "
        "(the interpolation without the averaging)",
        schedule_free=True,
        batch="equal-terms",
        sf_eval="z",
        family="equal-terms",
        versus="schedule-free",
    ),
    *(
        ScheduleArm(
            f"sf-warmup-{w:.0%}".replace("%", ""),
            _schedule_free_lrs(w),
            description=f"{_SF} with a warm-up over {w:.0%} of the steps (default 5%)",
            schedule_free=True,
            batch="equal-terms",
            family="equal-terms",
            versus="schedule-free",
        )
        for w in (0.0, 0.02, 0.10)
    ),
    *(
        ScheduleArm(
            f"{name}-b2-0.999",
            build,
            description=f"{text} with Adam's beta2 = 0.999 (the package's default) instead of "
            f"{ADAM_BETAS[1]}",
            schedule_free=name == "schedule-free",
            batch="equal-terms-beta2",
            optimizers=("adam",),
            betas=(ADAM_BETAS[0], 0.999),
            family="equal-terms",
            versus=name,
            reference="linear-b2-0.999",
        )
        for name, build, text in (
            ("linear", _fixed("linear"), "linear decay"),
            ("cosine", _fixed("cosine"), "cosine to 0"),
            ("schedule-free", _schedule_free_lrs(), "schedule-free AdamW"),
        )
    ),
)

#: the paper's refinement of the momentum run's record (SGD with momentum)
_EQUAL_TERMS_REFINED = ScheduleArm(
    "refined-0.1-mom",
    _refined(0.1),
    needs_linear=True,
    description=f"{_MOMENTUM}, the paper's refinement (Alg. 1, l2, tau 0.1) of the record of "
    "the best linear-mom run",
    batch="equal-terms",
    optimizers=("sgd",),
    source="linear-mom",
    momentum=0.9,
    family="equal-terms",
    versus="refined-0.1",
    reference="linear-mom",
)

#: momentum and averaging together, outside schedule-free (SGD; a batch group of their own)
_EQUAL_TERMS_COMBINED: tuple[ScheduleArm, ...] = tuple(
    ScheduleArm(
        f"{name}-mom-ema",
        _fixed(name),
        description=f"{_MOMENTUM}, {name} LR, scored at the EMA of the `{name}-ema` arm "
        "(momentum and averaging together)",
        batch="equal-terms-combined",
        optimizers=("sgd",),
        momentum=0.9,
        averaging=_EMA,
        family="equal-terms",
        versus=f"{name}-ema",
        reference="linear-mom",
    )
    for name in ("linear", "constant")
)


def _arms(rows: tuple[tuple[str, Build, str], ...], needs_linear: bool) -> dict[str, ScheduleArm]:
    return {name: ScheduleArm(name, build, needs_linear, text) for name, build, text in rows}


#: Every arm by name, in table order.
SCHEDULE_ARMS: dict[str, ScheduleArm] = {
    **_arms(_FIXED_ROWS, needs_linear=False),
    **{a.name: a for a in _ALTERNATIVE_ROWS},
    **_arms(_REFINED_ROWS, needs_linear=True),
    **{a.name: a for a in (*_EQUAL_TERMS_ROWS, *_EQUAL_TERMS_COMBINED, _EQUAL_TERMS_REFINED)},
    **_arms(_CANDIDATE_ROWS, needs_linear=True),
}

#: Momentum, averaging and schedule-free's parts (issue 20), trained in their own batches.
EQUAL_TERMS_ARMS: tuple[str, ...] = tuple(
    a.name for a in (*_EQUAL_TERMS_ROWS, *_EQUAL_TERMS_COMBINED, _EQUAL_TERMS_REFINED)
)

#: The alternatives a user would pick instead (issue 14), trained in their own batches.
ALTERNATIVE_ARMS: tuple[str, ...] = tuple(a.name for a in _ALTERNATIVE_ROWS)

#: The arms ``refinedlr bench convex`` runs by default, in table order.
DEFAULT_ARMS: tuple[str, ...] = (
    *(r[0] for r in _FIXED_ROWS),
    *ALTERNATIVE_ARMS,
    *(r[0] for r in _REFINED_ROWS),
    *EQUAL_TERMS_ARMS,
)

#: The refinement study's candidates (built from the linear run's record only).
CANDIDATE_ARMS: tuple[str, ...] = tuple(r[0] for r in _CANDIDATE_ROWS)


def register_schedule_arm(arm: ScheduleArm, *, replace: bool = False) -> ScheduleArm:
    """Add ``arm`` to :data:`SCHEDULE_ARMS` (``replace=True`` to overwrite a name)."""
    if arm.name in SCHEDULE_ARMS and not replace:
        raise ValueError(f"an arm named {arm.name!r} is already registered")
    SCHEDULE_ARMS[arm.name] = arm
    return arm


def unregister_schedule_arm(name: str) -> ScheduleArm:
    """Remove and return a registered arm."""
    return SCHEDULE_ARMS.pop(name)


def get_schedule_arm(name: str) -> ScheduleArm:
    """The arm ``name`` (``KeyError`` listing the known names otherwise)."""
    try:
        return SCHEDULE_ARMS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(SCHEDULE_ARMS)}") from None
