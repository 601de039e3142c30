"""Figures of gradient norms, smoothed norms and schedules (needs the ``plot`` extra), built with
``matplotlib.figure.Figure`` (no pyplot, no display needed) and written as PNG when a path is given.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> from refinedlr.refinement import refine_details
    >>> from refinedlr.schedules import LinearDecay
    >>> d = refine_details(np.geomspace(10, 1, 200), tau=0.1)
    >>> path = os.path.join(tempfile.mkdtemp(), "refined.png")
    >>> fig = plot_refinement(d, baselines={"linear": LinearDecay(200)}, path=path)
    >>> os.path.getsize(path) > 10_000
    True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from .plan import Prediction
from .refinement import Refinement
from .schedules import Schedule

__all__ = [
    "plot_lr_checks",
    "plot_norms_and_schedules",
    "plot_plan",
    "plot_refinement",
    "plot_schedules",
]


def _figure(nrows: int, height: float, ncols: int = 1) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'refinedlr[plot]'") from exc
    fig = Figure(figsize=(8.0, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, sharex=ncols == 1, squeeze=False).ravel()
    return fig, axes


def _values(s: Schedule | npt.ArrayLike) -> npt.NDArray[np.float64]:
    return s.preview() if isinstance(s, Schedule) else np.asarray(s, dtype=np.float64)


def _finish(fig: Any, title: str | None, path: str | os.PathLike[str] | None) -> Any:
    """Give ``fig`` its ``title`` (drawn literally), write it to ``path`` if given, return it."""
    if title:
        fig.suptitle(title, parse_math=False)
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig


def _legend(ax: Any, of: Any = None) -> None:
    """A legend on ``ax`` of the lines of ``of`` (default ``ax``), its labels drawn as written
    (never as mathtext: a label may hold ``$``)."""
    for text in ax.legend(*(of or ax).get_legend_handles_labels(), fontsize=8).get_texts():
        text.set_parse_math(False)


def plot_norms_and_schedules(
    norms: Mapping[str, npt.ArrayLike],
    schedules: Mapping[str, Schedule | npt.ArrayLike],
    *,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
    norm_label: str = "gradient norm",
    log_norms: bool = True,
) -> Any:
    """Top panel: named norm curves (log scale); bottom: named schedules (multipliers vs step).

    Without norms there is only the schedule panel. Curves of different lengths are drawn on the
    fraction of training (``t / T`` of each curve's own horizon ``T``) and the axis says so;
    otherwise the axis counts optimizer steps. Every label and the title are drawn literally.
    """
    curves = [np.asarray(v, dtype=np.float64) for v in norms.values()]
    shapes = [_values(s) for s in schedules.values()]
    lengths = sorted({y.size for y in curves + shapes})
    fig, axes = _figure(2 if norms else 1, 6.0 if norms else 3.5)
    ax_s = axes[-1]

    def xs(y: np.ndarray) -> np.ndarray:
        return np.arange(y.size) / max(y.size, 1) if len(lengths) > 1 else np.arange(y.size)

    if norms:
        ax_n = axes[0]
        for label, y in zip(norms, curves, strict=True):
            style: dict[str, Any] = {"lw": 0.8, "alpha": 0.5} if "raw" in label else {"lw": 1.8}
            ax_n.plot(xs(y), y, label=label, **style)
        if log_norms:
            ax_n.set_yscale("log")
        ax_n.set_ylabel(norm_label, parse_math=False)
        ax_n.grid(alpha=0.3)
        _legend(ax_n)
    for label, y in zip(schedules, shapes, strict=True):
        ax_s.plot(xs(y), y, label=label, lw=1.6)
    ax_s.set_ylabel("LR multiplier")
    if len(lengths) > 1:
        ax_s.set_xlabel(
            f"fraction of training (t / T of each curve; T from {lengths[0]:,} to "
            f"{lengths[-1]:,} steps)"
        )
    else:
        ax_s.set_xlabel("optimizer step")
    ax_s.set_ylim(-0.02, 1.05)
    ax_s.grid(alpha=0.3)
    if schedules:
        _legend(ax_s)
    return _finish(fig, title, path)


def plot_refinement(
    refinement: Refinement,
    *,
    baselines: Mapping[str, Schedule | npt.ArrayLike] | None = None,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Any:
    """The record, its median-smoothed version, the refined schedule and optional baselines."""
    prov = refinement.schedule.provenance
    norm = prov.get("norm", "l2")
    label = f"refined (tau={prov.get('tau')}, {norm})"
    schedules: dict[str, Schedule | npt.ArrayLike] = {label: refinement.schedule}
    schedules.update(baselines or {})
    curves = {
        f"raw {norm} norm": refinement.norms,
        f"smoothed (window {prov.get('window')})": refinement.smoothed,
    }
    axis = f"{norm} gradient norm"
    return plot_norms_and_schedules(curves, schedules, path=path, title=title, norm_label=axis)


def plot_schedules(
    schedules: Mapping[str, Schedule | npt.ArrayLike],
    *,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Any:
    """Several schedules on one axis (:func:`plot_norms_and_schedules` without norms)."""
    return plot_norms_and_schedules({}, schedules, path=path, title=title)


def plot_plan(
    prediction: Prediction,
    *,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Any:
    """A plan side by side: each schedule's learning rates (left) and the curve the bound
    predicts for it (right: the fitted loss when :func:`refinedlr.plan.predict` had losses, else
    the bound), the source run first, dashed.

    >>> from refinedlr import Cosine, LinearDecay
    >>> from refinedlr.plan import predict
    >>> fig = plot_plan(predict(0.1, LinearDecay(100), {"cosine at 2x": Cosine(200)}))
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['optimizer step', 'optimizer step']
    """
    fig, (left, right) = _figure(1, 3.6, ncols=2)
    for i, f in enumerate((prediction.source, *prediction.candidates)):
        style = {"ls": "--", "color": "black"} if i == 0 else {}
        lrs = f.lr * f.schedule.preview()
        label = f"{f.name}: peak LR {f.lr:.3g}"
        left.plot(np.arange(f.schedule.total_steps), lrs, lw=1.4, label=label, **style)
        right.plot(f.steps, f.bound if f.loss is None else f.loss, lw=1.4, **style)
    left.set_ylabel("learning rate")
    right.set_ylabel("predicted loss" if prediction.fit is not None else "bound (relative)")
    if prediction.fit is None:
        right.set_yscale("log")
    for ax in (left, right):
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    _legend(right, left)
    return _finish(fig, title, path)


def plot_lr_checks(
    checks: Mapping[str, tuple[Mapping[float, float], float]],
    *,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Any:
    """A planned peak LR beside the sweep that checks it: for each label, ``({lr: loss}, planned
    LR)``, the loss against the LR (log scale), the planned LR marked by a dashed line.

    >>> fig = plot_lr_checks({"cosine": ({0.05: 0.3, 0.1: 0.2, 0.2: 0.4}, 0.1)})
    >>> fig.axes[0].get_xscale()
    'log'
    """
    fig, (ax,) = _figure(1, 3.4)
    for label, (losses, planned) in checks.items():
        lrs = sorted(losses)
        (line,) = ax.plot(lrs, [losses[lr] for lr in lrs], marker="o", lw=1.4, label=label)
        ax.axvline(planned, ls="--", color=line.get_color(), lw=1.0)
    ax.set_xscale("log")
    ax.set_xlabel("peak learning rate (dashed: planned from the tuned run)")
    ax.set_ylabel("validation loss")
    ax.grid(alpha=0.3)
    _legend(ax)
    return _finish(fig, title, path)
