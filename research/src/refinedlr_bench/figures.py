"""Figures of the reports, drawn without pyplot's global state (Agg canvas, PNG files)."""

from __future__ import annotations

from typing import Any, Literal

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["new_figure", "subplots"]


def new_figure(
    figsize: tuple[float, float],
    layout: Literal["constrained", "tight"] | None = "constrained",
) -> Figure:
    """A figure on its own Agg canvas (``fig.savefig`` writes PNG files).

    >>> new_figure((2, 1)).get_size_inches().tolist()
    [2.0, 1.0]
    """
    fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def subplots(nrows: int, ncols: int, figsize: tuple[float, float], **kw: Any) -> tuple[Figure, Any]:
    """``(figure, axes)`` as ``pyplot.subplots`` returns them, for a tight layout."""
    fig = new_figure(figsize, layout="tight")
    return fig, fig.subplots(nrows, ncols, **kw)
