"""The arms of the refinement study (issue 7), as one table.

Each *arm* is a way to make a schedule on one dataset and optimizer: linear decay, the paper's
refinement, a candidate variant, or a cheap variant refined from a short pilot run. Arms may need
the recorded gradient norms of another arm's best run (``needs``): linear decay for most, the
paper's refined run for iterated refinement, a pilot linear-decay run for cheap refinement.
Verification arms run once at another arm's tuned LR (``fixed_k``) and record their norms, for
"refine, then verify".

:data:`STUDY_ARMS` lists every arm; the convex part of the study
(:mod:`refinedlr_bench.study_convex`) tunes them exactly like the convex suite.

>>> [a for a in STUDY_ARMS if STUDY_ARMS[a].group == "pilot"]
['pilot-linear-0.1', 'pilot-linear-0.25']
>>> STUDY_ARMS["pilot-0.1"].needs
('pilot-linear-0.1',)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from refinedlr import Schedule, Tabulated, get_schedule

from refinedlr_bench.refinement_variants import prefix_norms, variant_values
from refinedlr_bench.schedule_arms import SCHEDULE_ARMS, ArmContext

__all__ = ["OPTIMIZERS", "STUDY_ARMS", "ArmInputs", "Dep", "StudyArm"]

FloatArray = npt.NDArray[np.float64]
OPTIMIZERS = ("adam", "sgd")


@dataclasses.dataclass(frozen=True)
class Dep:
    """The recorded run of an arm another arm depends on (its best LR).

    ``mean`` ``[T, 2]`` and ``per_seed`` ``[S, T, 2]`` hold the l1 and l2 gradient norms;
    ``adam`` ``[S, T, 2]`` Adam's step norms (update l2 norm, preconditioned gradient norm) when
    they were asked for.
    """

    mean: FloatArray
    per_seed: FloatArray
    lr: float
    k: int
    adam: FloatArray | None = None


@dataclasses.dataclass(frozen=True)
class ArmInputs:
    """What an arm's ``build`` gets: the horizon, optimizer and its dependencies' records."""

    optimizer: str
    total_steps: int
    full_steps: int
    steps_per_epoch: int
    deps: Mapping[str, Dep]

    @property
    def norm_kind(self) -> str:
        return "l1" if self.optimizer == "adam" else "l2"

    def record(self, dep: str) -> FloatArray:
        """The paper's record of ``dep``: mean l1 norms (Adam) or l2 norms (SGD)."""
        col = 0 if self.norm_kind == "l1" else 1
        return np.asarray(self.deps[dep].mean[:, col], dtype=np.float64)

    def arm_context(self, dep: str | None = "linear") -> ArmContext:
        """An :class:`~refinedlr_bench.schedule_arms.ArmContext` with ``dep``'s record as the
        "linear" run (``None``: without a record)."""
        if dep is None:
            return ArmContext(self.total_steps, self.steps_per_epoch, self.optimizer)
        d = self.deps[dep]
        return ArmContext(
            total_steps=self.total_steps,
            steps_per_epoch=self.steps_per_epoch,
            optimizer=self.optimizer,
            linear_norms={"l1": d.mean[:, 0], "l2": d.mean[:, 1]},
            linear_lr=d.lr,
            linear_norms_per_seed=d.per_seed,
        )


Build = Callable[[ArmInputs], Schedule]


@dataclasses.dataclass(frozen=True)
class StudyArm:
    """A schedule-making arm of the study.

    Attributes:
        name: key and label.
        build: ``ArmInputs -> Schedule`` on ``inputs.total_steps`` steps.
        needs: arms whose best run's norms ``build`` reads.
        group: ``"baseline"``, ``"candidate"``, ``"pilot"``, ``"cheap"`` or ``"verify"``.
        description: one line for the report.
        adam_norms: also needs Adam's step norms of ``needs[0]``'s best run (Adam only).
        horizon: fraction of the full horizon (in epochs) this arm trains for (pilot runs).
        record: record the gradient norms of every run of this arm.
        optimizers: where the arm applies.
        fixed_k: no LR tuning: run only the tuned grid index of this arm (which must be in
            ``needs``), e.g. a verification run at another arm's tuned LR.
        record_adam: record Adam's step norms of this arm's runs too.
    """

    name: str
    build: Build
    needs: tuple[str, ...] = ()
    group: str = "candidate"
    description: str = ""
    adam_norms: bool = False
    horizon: float = 1.0
    record: bool = False
    optimizers: tuple[str, ...] = OPTIMIZERS
    fixed_k: str | None = None
    record_adam: bool = False

    def fixed_index(self, inputs: ArmInputs) -> int | None:
        """The grid index of a verification run (``None`` for a tuned arm)."""
        return None if self.fixed_k is None else inputs.deps[self.fixed_k].k


# ----------------------------------------------------------------------------------------------
# how the arms make their schedules


def _linear(inp: ArmInputs) -> Schedule:
    return get_schedule("linear", inp.total_steps)


def _schedule_arm(name: str) -> Build:
    """The convex suite's arm ``name``, from the linear run's record if it needs one (a
    schedule, not an optimizer change: the study's trainer has no schedule-free arms)."""
    arm = SCHEDULE_ARMS[name]
    if arm.schedule_free:
        raise ValueError(f"{name!r} changes the optimizer; the study only compares schedules")
    dep = "linear" if arm.needs_linear else None
    return lambda inp: arm.build(inp.arm_context(dep))


def _tab(inp: ArmInputs, values: FloatArray, **prov: Any) -> Tabulated:
    return Tabulated(total_steps=inp.total_steps, values=values, provenance=prov)


def _refine_dep(dep: str, tau: float = 0.1, **kw: Any) -> Build:
    """Refine (a variant, default the paper's) from ``dep``'s record onto the full horizon."""

    def build(inp: ArmInputs) -> Schedule:
        v = variant_values(inp.record(dep), norm=inp.norm_kind, tau=tau, **kw)
        return _tab(inp, v, source=dep, tau=tau, **kw)

    return build


def _adam_step(column: int, label: str) -> Build:
    """Algorithm 1 (weights ^-2) on a record of Adam's step norms of the linear run."""

    def build(inp: ArmInputs) -> Schedule:
        a = inp.deps["linear"].adam
        assert a is not None
        rec = np.asarray(a[:, :, column], dtype=np.float64).mean(axis=0)
        v = variant_values(rec, norm="l2", tau=0.1)
        return _tab(inp, v, source=f"linear ({label})", tau=0.1, power=2)

    return build


def _prefix(fraction: float) -> Build:
    """The paper's refinement of the first ``fraction`` of the linear run, continued flat."""

    def build(inp: ArmInputs) -> Schedule:
        rec = prefix_norms(inp.record("linear"), fraction)
        v = variant_values(rec, norm=inp.norm_kind, tau=0.1)
        return _tab(inp, v, source=f"first {fraction:.0%} of linear")

    return build


# ----------------------------------------------------------------------------------------------
# the table

_LIN = ("linear",)
_PILOT_10 = ("pilot-linear-0.1",)
_PILOT_25 = ("pilot-linear-0.25",)
_ADAM = ("adam",)
_PAPER = "the paper's refinement (tau 0.1)"
_PILOT = "carried over on normalised time"


def _candidate(name: str) -> StudyArm:
    """A candidate variant of the convex suite's table (made from the linear run's record)."""
    return StudyArm(name, _schedule_arm(name), _LIN, description=SCHEDULE_ARMS[name].description)


_ROWS: tuple[StudyArm, ...] = (
    # references
    StudyArm("linear", _linear, (), "baseline", "1 - t/T (reference)", record=True),
    StudyArm("cosine", _schedule_arm("cosine"), (), "baseline", "(1 + cos(pi t/T)) / 2"),
    StudyArm(
        "refined-0.1",
        _schedule_arm("refined-0.1"),
        _LIN,
        "baseline",
        "the paper's refinement, tau 0.1 (Alg. 2 l1 for Adam, Alg. 1 l2 for SGD)",
    ),
    StudyArm(
        "refined-0.5",
        _schedule_arm("refined-0.5"),
        _LIN,
        "baseline",
        "the paper's refinement, tau 0.5",
    ),
    # candidates made from the linear run's record
    _candidate("refined-floor-med"),
    _candidate("refined-floor-q25"),
    _candidate("refined-clip-2"),
    _candidate("refined-power-0.5"),
    _candidate("refined-mix-0.5"),
    _candidate("refined-warmup-linear"),
    _candidate("refined-bound-select"),
    _candidate("refined-bound-kappa-0.5"),
    _candidate("refined-auto-tau"),
    _candidate("refined-envelope"),
    _candidate("refined-anti"),
    StudyArm(
        "refined-adam-update",
        _adam_step(0, "update norm"),
        _LIN,
        description="Adam: Alg. 1 (weights ^-2) on the l2 norm of the update m_hat/(sqrt(v_hat)+eps)",
        adam_norms=True,
        optimizers=_ADAM,
    ),
    StudyArm(
        "refined-adam-precond",
        _adam_step(1, "preconditioned gradient norm"),
        _LIN,
        description="Adam: Alg. 1 on the preconditioned gradient norm sqrt(sum g^2/(sqrt(v_hat)+eps))",
        adam_norms=True,
        optimizers=_ADAM,
    ),
    # iterated refinement toward a fixed point: refine again from the refined run's own norms
    StudyArm(
        "refined-iter-2",
        _refine_dep("refined-0.1"),
        ("refined-0.1",),
        description="iterated: the paper's refinement (tau 0.1) of the tuned refined-0.1 run",
        record=True,
    ),
    StudyArm(
        "refined-iter-3",
        _refine_dep("refined-iter-2"),
        ("refined-iter-2",),
        description="iterated twice: refinement of the tuned refined-iter-2 run",
    ),
    # cheap refinement: a pilot linear-decay run of a fraction of the horizon, or the prefix
    StudyArm(
        "pilot-linear-0.1",
        _linear,
        (),
        "pilot",
        "linear decay on 10% of the epochs (the pilot run, tuned)",
        horizon=0.1,
        record=True,
    ),
    StudyArm(
        "pilot-0.1",
        _refine_dep("pilot-linear-0.1"),
        _PILOT_10,
        "cheap",
        f"{_PAPER} of the best 10%-horizon pilot run, {_PILOT}",
    ),
    StudyArm(
        "pilot-envelope-0.1",
        _refine_dep("pilot-linear-0.1", envelope=True),
        _PILOT_10,
        "cheap",
        f"refined-envelope from the best 10%-horizon pilot run, {_PILOT}",
    ),
    StudyArm(
        "pilot-floor-med-0.1",
        _refine_dep("pilot-linear-0.1", floor=0.5),
        _PILOT_10,
        "cheap",
        f"refined-floor-med from the best 10%-horizon pilot run, {_PILOT}",
    ),
    StudyArm(
        "prefix-0.1",
        _prefix(0.1),
        _LIN,
        "cheap",
        f"{_PAPER} of the first 10% of the linear run, continued flat",
    ),
    StudyArm(
        "pilot-linear-0.25",
        _linear,
        (),
        "pilot",
        "linear decay on 25% of the epochs (the pilot run, tuned)",
        horizon=0.25,
        record=True,
    ),
    StudyArm(
        "pilot-0.25",
        _refine_dep("pilot-linear-0.25"),
        _PILOT_25,
        "cheap",
        f"{_PAPER} of the best 25%-horizon pilot run, {_PILOT}",
    ),
    StudyArm(
        "pilot-envelope-0.25",
        _refine_dep("pilot-linear-0.25", envelope=True),
        _PILOT_25,
        "cheap",
        f"refined-envelope from the best 25%-horizon pilot run, {_PILOT}",
    ),
    StudyArm(
        "pilot-floor-med-0.25",
        _refine_dep("pilot-linear-0.25", floor=0.5),
        _PILOT_25,
        "cheap",
        f"refined-floor-med from the best 25%-horizon pilot run, {_PILOT}",
    ),
    StudyArm(
        "prefix-0.25",
        _prefix(0.25),
        _LIN,
        "cheap",
        f"{_PAPER} of the first 25% of the linear run, continued flat",
    ),
    # verification runs: one run each (no LR tuning), recorded, for "refine, then verify"
    StudyArm(
        "verify-linear",
        _linear,
        _LIN,
        "verify",
        "linear decay at its tuned LR, rerun with Adam's step norms recorded",
        fixed_k="linear",
        record=True,
        record_adam=True,
    ),
    StudyArm(
        "verify-refined-0.1",
        _schedule_arm("refined-0.1"),
        ("linear", "refined-0.1"),
        "verify",
        "the paper's refined schedule at its tuned LR, recorded",
        fixed_k="refined-0.1",
        record=True,
        record_adam=True,
    ),
    StudyArm(
        "verify-refined-at-linear",
        _schedule_arm("refined-0.1"),
        _LIN,
        "verify",
        "the paper's refined schedule at linear decay's tuned LR (one run), recorded",
        fixed_k="linear",
        record=True,
        record_adam=True,
    ),
    StudyArm(
        "verify-linear-pilot-0.1",
        _linear,
        _PILOT_10,
        "verify",
        "linear decay (full horizon) at the 10% pilot's tuned LR, recorded",
        fixed_k="pilot-linear-0.1",
        record=True,
        record_adam=True,
    ),
    StudyArm(
        "verify-pilot-0.1",
        _refine_dep("pilot-linear-0.1"),
        _PILOT_10,
        "verify",
        "the pilot-0.1 refined schedule at the pilot's tuned LR (one run), recorded",
        fixed_k="pilot-linear-0.1",
        record=True,
        record_adam=True,
    ),
)

#: Every arm of the study by name, in table order.
STUDY_ARMS: dict[str, StudyArm] = {arm.name: arm for arm in _ROWS}
