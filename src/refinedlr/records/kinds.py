"""Which norm a series holds, read from its name, and which norm to refine with.

Logs name their gradient-norm series in many ways: ``l2``/``l1`` (this library), ``grad_norm``
(Hugging Face, an l2 norm), ``gnorm`` (fairseq, l2), ``grad_2.0_norm_total`` (Lightning, of order
2), ``sched/gnorm_l1``, ``update_l2`` (an Adam-type optimizer's update direction). A name that
carries an ``l1``/``l2`` token says which norm it holds; a gradient-norm name without one
(``grad_norm``, ``gnorm``, ``total_norm``) holds the l2 norm, the convention of
``torch.nn.utils.clip_grad_norm_`` and of every logger above. Any other name says nothing.

>>> [norm_kind(n) for n in ("sched/gnorm_l1", "train/grad_norm", "gnorm", "update_l2", "loss")]
['l1', 'l2', 'l2', 'update_l2', None]
>>> choose_norm(["sched/gnorm_l1"]).reason
"l1, from the column name 'sched/gnorm_l1' (Algorithm 2, for Adam-type optimizers; --norm l2 to change)"
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

__all__ = ["NormChoice", "choose_norm", "describe_kind", "norm_kind"]

_Norm = Literal["l1", "l2"]
_GRAD_WORDS = {"gnorm", "gradnorm", "grad", "grads", "gradient"}
_ORDER = re.compile(r"^(?:l|norm|gnorm)([12])$")
_LIGHTNING = re.compile(r"grad_(\d+)(?:\.0)?_norm")


def norm_kind(name: str) -> str | None:
    """``"l1"``, ``"l2"``, ``"update_l1"`` or ``"update_l2"`` when ``name`` says which norm a series
    holds, else ``None`` (see the module documentation)."""
    low = name.lower()
    tokens = set(re.findall(r"[a-z]+\d*|\d+", low))
    orders = {m.group(1) for t in tokens if (m := _ORDER.match(t))}
    orders |= set(_LIGHTNING.findall(low))
    update = any(t.startswith("update") for t in tokens)
    if not orders and (update or tokens & _GRAD_WORDS):
        orders = {"2"}  # a gradient norm without an order: l2, as clip_grad_norm_ and loggers
    if len(orders) != 1 or not orders <= {"1", "2"}:
        return None
    return ("update_" if update else "") + "l" + orders.pop()


def describe_kind(column: str) -> str:
    """How an output names a series: ``"l2 gradient norms (column 'gnorm')"``.

    >>> describe_kind("update_l2")
    "l2 norms of the update direction (column 'update_l2')"
    """
    kind = norm_kind(column)
    if kind is None:
        return f"norms of column {column!r} (which norm, its name does not say)"
    what = "norms of the update direction" if kind.startswith("update") else "gradient norms"
    return f"{kind[-2:]} {what} (column {column!r})"


@dataclasses.dataclass(frozen=True)
class NormChoice:
    """The refinement's norm, the column it is read from (``None``: the record's choice) and why."""

    norm: Literal["l1", "l2"]
    column: str | None
    reason: str
    assumed: bool = False


def choose_norm(
    kinds: Sequence[str], requested: str | None = None, *, meta: Mapping[str, Any] | None = None
) -> NormChoice:
    """The norm to refine a record of columns ``kinds`` with: ``requested`` (``--norm``), else the
    norm its column names say (update-direction columns are recorded only for Adam-type
    optimizers: l1), else l2, assumed, with how to change it.

    ``meta`` is the record's ``meta`` (:class:`~refinedlr.records.GradNormRecord`): a plain array or a
    headerless CSV names no column (its reader calls the series ``l2`` by convention).
    """
    kinds = list(kinds)
    only = kinds[0] if len(kinds) == 1 else None
    if requested is not None:
        column = requested if requested in kinds else None  # else the record resolves (warns)
        held = norm_kind(only) if only else None
        note = ""
        if column is None and held in ("l1", "l2") and held != requested:
            note = f"; the column {only!r} holds {held} norms by its name"
        return NormChoice(cast(_Norm, requested), column, f"{requested}, as asked (--norm){note}")
    unnamed = "column" not in (meta or {}) and (meta or {}).get("format") in ("csv", "tsv", "npy")
    if "l1" in kinds and any(norm_kind(k) in ("update_l1", "update_l2") for k in kinds):
        return NormChoice(
            "l1",
            "l1",
            "l1: the record has update-direction norms, which are recorded only for Adam-type "
            "optimizers (Algorithm 2; --norm l2 to change)",
        )
    held = norm_kind(only) if only is not None and not unnamed else None
    if only is not None and held in ("l1", "l2"):
        how = (
            "Algorithm 2, for Adam-type optimizers; --norm l2 to change"
            if held == "l1"
            else "Algorithm 1, for SGD-type optimizers; for an Adam-type run the paper refines "
            "l1 norms, which this log does not hold"
        )
        return NormChoice(cast(_Norm, held), only, f"{held}, from the column name {only!r} ({how})")
    column = "l2" if "l2" in kinds else only
    where = f"the column {column!r}" if column and not unnamed else "the log names no column and"
    return NormChoice(
        "l2",
        column,
        f"l2, assumed: {where} does not say which optimizer produced it; l2 is right for "
        "SGD-type optimizers, for Adam-type ones refine with --norm l1",
        assumed=True,
    )
