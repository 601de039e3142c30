"""Figures: gradient norms, smoothed norms and schedules on one page (needs the ``plot`` extra).

Figures are built with ``matplotlib.figure.Figure`` (no pyplot, no display needed) and written as
PNG when a path is given.

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

__all__ = ["plot_norms_and_schedules", "plot_plan", "plot_refinement", "plot_schedules"]


def _figure(nrows: int, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'refinedlr[plot]'") from exc
    fig = Figure(figsize=(8.0, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, axes


def _values(s: Schedule | npt.ArrayLike) -> npt.NDArray[np.float64]:
    return s.preview() if isinstance(s, Schedule) else np.asarray(s, dtype=np.float64)


def _save(fig: Any, path: str | os.PathLike[str] | None) -> None:
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=120)


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

    Curves whose length differs from the longest are drawn on normalised time so they line up.
    """
    fig, (ax_n, ax_s) = _figure(2, 6.0)
    lengths = [np.asarray(v).size for v in norms.values()]
    lengths += [_values(s).size for s in schedules.values()]
    T = max(lengths) if lengths else 1
    for label, v in norms.items():
        y = np.asarray(v, dtype=np.float64)
        x = np.linspace(0, T - 1, y.size)
        style: dict[str, Any] = {"lw": 0.8, "alpha": 0.5} if "raw" in label else {"lw": 1.8}
        ax_n.plot(x, y, label=label, **style)
    if log_norms and norms:
        ax_n.set_yscale("log")
    ax_n.set_ylabel(norm_label)
    if norms:
        ax_n.legend(loc="best", fontsize=8)
    ax_n.grid(alpha=0.3)
    for label, s in schedules.items():
        y = _values(s)
        ax_s.plot(np.linspace(0, T - 1, y.size), y, label=label, lw=1.6)
    ax_s.set_ylabel("LR multiplier")
    ax_s.set_xlabel("optimizer step")
    ax_s.set_ylim(-0.02, 1.05)
    ax_s.grid(alpha=0.3)
    if schedules:
        ax_s.legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title)
    _save(fig, path)
    return fig


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
    return plot_norms_and_schedules(
        {
            f"raw {norm} norm": refinement.norms,
            f"smoothed (window {prov.get('window')})": refinement.smoothed,
        },
        schedules,
        path=path,
        title=title,
        norm_label=f"{norm} gradient norm",
    )


def plot_schedules(
    schedules: Mapping[str, Schedule | npt.ArrayLike],
    *,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Any:
    """Several schedules on one axis."""
    fig, (ax,) = _figure(1, 3.5)
    for label, s in schedules.items():
        y = _values(s)
        ax.plot(np.arange(y.size), y, label=label, lw=1.6)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("LR multiplier")
    ax.set_ylim(-0.02, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    _save(fig, path)
    return fig


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
    fig, _ = _figure(1, 3.6)
    fig.clear()
    left, right = fig.subplots(1, 2)
    for i, f in enumerate((prediction.source, *prediction.candidates)):
        style = {"ls": "--", "color": "black"} if i == 0 else {}
        label = f"{f.name}: peak LR {f.lr:.3g}"
        left.plot(
            np.arange(f.schedule.total_steps),
            f.lr * f.schedule.preview(),
            lw=1.4,
            label=label,
            **style,
        )
        right.plot(f.steps, f.bound if f.loss is None else f.loss, lw=1.4, **style)
    left.set_ylabel("learning rate")
    right.set_ylabel("predicted loss" if prediction.fit is not None else "bound (relative)")
    if prediction.fit is None:
        right.set_yscale("log")
    for ax in (left, right):
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    right.legend(*left.get_legend_handles_labels(), loc="upper right", fontsize=7)
    if title:
        fig.suptitle(title)
    _save(fig, path)
    return fig
