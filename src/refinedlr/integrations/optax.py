"""JAX / optax: refinedlr schedules as optax schedules, and gradient-norm recording under ``jit``.

:func:`record_norms` keeps the norms in a ring buffer in ``opt_state`` (checkpointed with it);
:class:`NormWriter` appends them, on the host, to a record. The Integrations page shows them in a
training loop, with every setting and the resume rules.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

try:
    import jax
    import jax.numpy as jnp
    import optax
except ImportError as exc:
    raise ImportError(
        f'refinedlr.integrations.optax needs jax and optax ({exc}): pip install "refinedlr[jax]"'
    ) from exc

from ..fileio import Closing
from ..records import RecordWriter
from ..schedule_io import ScheduleLike, as_schedule

__all__ = [
    "NormRecordState",
    "NormWriter",
    "find_norm_state",
    "find_norm_states",
    "global_norms",
    "optax_schedule",
    "record_norms",
]

_CODES = {"l2": 0, "l1": 1, "update_l2": 2, "update_l1": 3}
_L2 = ("l2", "update_l2")
_KINDS = {v: k for k, v in _CODES.items()}


def optax_schedule(
    schedule: ScheduleLike,
    peak_value: float = 1.0,
    *,
    total_steps: int | None = None,
    **schedule_kwargs: Any,
) -> Callable[[Any], jax.Array]:
    """An optax schedule ``count -> peak_value * s_t`` (pure, ``jit``-traceable) following a
    refinedlr schedule (arguments: those of :func:`~refinedlr.schedule_io.as_schedule`). An integer
    count reads the multipliers exactly (the last one past the horizon), a fractional one
    interpolates linearly.

    >>> import jax.numpy as jnp
    >>> from refinedlr import LinearDecay
    >>> lr = optax_schedule(LinearDecay(total_steps=4), peak_value=0.1)
    >>> [round(float(lr(jnp.int32(t))), 6) for t in range(6)]
    [0.1, 0.075, 0.05, 0.025, 0.025, 0.025]
    >>> round(float(lr(0.5)), 6)
    0.0875
    """
    schedule_kwargs.setdefault("base_lr", float(peak_value))  # for absolute args (lr_end)
    sched = as_schedule(schedule, total_steps, **schedule_kwargs)
    table_np = float(peak_value) * sched.preview()
    last = sched.total_steps - 1

    def lr(count: Any) -> jax.Array:
        table = jnp.asarray(table_np)  # (made at the first call; under jit a constant)
        c = jnp.asarray(count)
        if jnp.issubdtype(c.dtype, jnp.integer):
            return table[jnp.clip(c, 0, last)]
        x = jnp.clip(c.astype(table.dtype), 0, last)
        lo = jnp.floor(x).astype(jnp.int32)
        hi = jnp.minimum(lo + 1, last)
        w = x - lo.astype(table.dtype)
        return table[lo] + w * (table[hi] - table[lo])

    return lr


class NormRecordState(NamedTuple):
    """The state of :func:`record_norms`: ``count``, the steps recorded so far (int32); ``norms``,
    a float32 ring buffer ``(buffer_size, len(kinds))`` (step ``t`` in row ``t % buffer_size``);
    ``kinds``, the kinds as codes (0: ``l2``, 1: ``l1``, 2: ``update_l2``, 3: ``update_l1``)."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as optax's own states do
    norms: jax.Array
    kinds: jax.Array


def _kinds(kinds: Sequence[str] | str) -> tuple[str, ...]:
    out = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not out or len(set(out)) != len(out) or any(k not in _CODES for k in out):
        raise ValueError(f"kinds must be distinct entries of {tuple(_CODES)}, got {kinds!r}")
    return out


def global_norms(tree: Any, kinds: Sequence[str] | str = ("l2",)) -> jax.Array:
    """The global norms of all leaves of ``tree`` together, one per kind, traceable under ``jit``:
    ``l2 = sqrt(sum of squares)`` (``update_l2`` too), ``l1 = sum of absolute values`` (and
    ``update_l1``), accumulated in at least float32.

    >>> import jax.numpy as jnp
    >>> global_norms({"a": jnp.array([3.0, -4.0]), "b": jnp.array([[12.0]])}, ("l2", "l1"))
    Array([13., 19.], dtype=float32)
    """
    ks = _kinds(kinds)
    leaves = [jnp.asarray(x) for x in jax.tree_util.tree_leaves(tree)]
    acc = jnp.result_type(jnp.float32, *[x.dtype for x in leaves]) if leaves else jnp.float32
    if jnp.issubdtype(acc, jnp.complexfloating):
        acc = np.finfo(acc).dtype  # the real dtype of a complex one
    out = []
    for k in ks:
        total = jnp.zeros((), acc)
        for x in leaves:
            a = jnp.abs(x).astype(acc)
            total = total + (jnp.sum(jnp.square(a)) if k in _L2 else jnp.sum(a))
        out.append(jnp.sqrt(total) if k in _L2 else total)
    return jnp.stack(out)


def record_norms(
    kinds: Sequence[str] | str = ("l2",), buffer_size: int = 1000
) -> optax.GradientTransformation:
    """A ``GradientTransformation`` that records the updates' global norms in its state (the
    updates pass through): chained first, the raw gradients; after ``optax.scale_by_adam(...)``,
    Adam's direction (``"update_l2"``). Write them out with :class:`NormWriter` at least every
    ``buffer_size`` steps.

    >>> import jax, jax.numpy as jnp, optax
    >>> tx = optax.chain(record_norms(("l2", "l1"), buffer_size=4), optax.sgd(0.1))
    >>> params = {"w": jnp.zeros(2)}
    >>> state = tx.init(params)
    >>> _, state = jax.jit(tx.update)({"w": jnp.array([3.0, -4.0])}, state, params)
    >>> rec = find_norm_state(state)
    >>> int(rec.count), rec.norms[0].tolist()
    (1, [5.0, 7.0])
    """
    ks = _kinds(kinds)
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
        raise ValueError(f"buffer_size must be an int >= 1, got {buffer_size!r}")
    codes = [_CODES[k] for k in ks]

    def init_fn(params: Any) -> NormRecordState:
        norms = jnp.full((buffer_size, len(ks)), jnp.nan, jnp.float32)
        return NormRecordState(jnp.zeros((), jnp.int32), norms, jnp.asarray(codes, jnp.int32))

    def update_fn(
        updates: Any, state: NormRecordState, params: Any = None
    ) -> tuple[Any, NormRecordState]:
        vals = global_norms(updates, ks).astype(jnp.float32)
        norms = state.norms.at[state.count % buffer_size].set(vals)
        return updates, NormRecordState(state.count + 1, norms, state.kinds)

    return optax.GradientTransformation(init_fn, update_fn)


def find_norm_states(opt_state: Any) -> list[NormRecordState]:
    """The :class:`NormRecordState` s inside an optimizer state, in chain order."""
    leaves = jax.tree_util.tree_leaves(opt_state, is_leaf=lambda x: isinstance(x, NormRecordState))
    return [s for s in leaves if isinstance(s, NormRecordState)]


def find_norm_state(opt_state: Any) -> NormRecordState:
    """The :class:`NormRecordState` inside an optimizer state (exactly one must be present)."""
    found = find_norm_states(opt_state)
    if len(found) != 1:
        raise ValueError(
            f"expected one record_norms() state in the optimizer state, found {len(found)}"
        )
    return found[0]


def _read_states(opt_state: Any) -> tuple[int, list[npt.NDArray[np.float64]], tuple[str, ...]]:
    """The common step count, each state's ring buffer and all the kinds (columns in order)."""
    states = find_norm_states(opt_state)
    if not states:
        raise ValueError("expected a record_norms() state in the optimizer state, found 0")
    fetched = jax.device_get([(st.count, st.norms, st.kinds) for st in states])
    counts = sorted({int(c) for c, _, _ in fetched})
    if len(counts) != 1:
        raise ValueError(
            f"the record_norms() states of this optimizer recorded different numbers of steps "
            f"({counts}); they must update together (the same chain, inside the same MultiSteps)"
        )
    kinds = tuple(_KINDS[int(c)] for _, _, codes in fetched for c in np.asarray(codes).reshape(-1))
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"two record_norms() states record the same kind: {list(kinds)}")
    buffers = [np.asarray(n, dtype=np.float64) for _, n, _ in fetched]
    return counts[0], buffers, kinds


class NormWriter(Closing):
    """Append the norms carried by :func:`record_norms` states to a record file (host side).

    Args:
        path: the record (core CSV format ``step,<kind>...``).
        opt_state: the *restored* state when resuming (the file keeps its rows before its step);
            leave it out for a fresh run from step 0 (an existing file is overwritten).
        fsync, process_index: ``fsync`` after every write; the JAX process that writes.

    :meth:`write` pulls the state to the host (a device sync): call it outside ``jit``, every
    ``N <= buffer_size`` steps and at the end (steps overwritten before: missing, with a warning).

    >>> import os, tempfile, jax.numpy as jnp, optax
    >>> tx = optax.chain(record_norms("l2"), optax.sgd(0.1))
    >>> params = {"w": jnp.ones(2)}
    >>> state = tx.init(params)
    >>> path = os.path.join(tempfile.mkdtemp(), "norms.csv")
    >>> with NormWriter(path) as writer:
    ...     for _ in range(3):
    ...         _, state = tx.update({"w": jnp.array([3.0, 4.0])}, state, params)
    ...     writer.write(state)
    3
    >>> print(open(path).read())
    step,l2
    0,5
    1,5
    2,5
    <BLANKLINE>
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        opt_state: Any = None,
        *,
        fsync: bool = True,
        process_index: int = 0,
    ) -> None:
        self.path = Path(path)
        self.start_step = 0 if opt_state is None else _read_states(opt_state)[0]
        self.fsync = fsync
        self.is_writer = jax.process_index() == process_index
        self._writer: RecordWriter | None = None
        self._kinds: tuple[str, ...] | None = None
        self._next: int | None = None  # the next step to write
        self._closed = False

    @property
    def step(self) -> int | None:
        """The next step :meth:`write` will write (``None`` before the first write)."""
        return self._next

    def write(self, opt_state: Any) -> int:
        """Append the steps recorded since the last call; returns how many rows were written."""
        if self._closed:
            raise RuntimeError("this NormWriter is closed")
        if not self.is_writer:
            return 0
        count, buffers, kinds = _read_states(opt_state)
        if self._writer is None or self._next is None or count < self._next:
            # the first write, or a rollback: keep the rows before the (new) start, continue
            start = min(self.start_step if self._writer is None else count, count)
            if self._writer is not None:
                self._writer.close()
            self._kinds = kinds
            self._writer = RecordWriter(self.path, kinds, start_step=start)
            last = self._writer.last_step
            self._next = 0 if last is None else last + 1
        elif kinds != self._kinds:
            raise ValueError(f"the state records kinds {list(kinds)}, the file {self._kinds}")
        start = self._next
        if count <= start:
            return 0
        steps = np.arange(start, count, dtype=np.int64)
        parts = [  # the steps overwritten in a ring buffer are missing
            np.where((steps < count - len(b))[:, None], math.nan, b[steps % len(b)])
            for b in buffers
        ]
        rows = np.concatenate(parts, axis=1)
        lost = steps < count - min(len(b) for b in buffers)
        if lost.any():
            sizes = sorted({len(b) for b in buffers})
            msg = (
                f"steps {start}..{int(steps[lost].max())} were overwritten in the record_norms() "
                f"buffer (buffer_size={', '.join(map(str, sizes))}) before they were written; "
                "they are recorded as missing. Call NormWriter.write at least every buffer_size "
                "steps"
            )
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        rows[~np.isfinite(rows)] = math.nan
        self._writer.write(steps, rows)
        self._writer.flush(fsync=self.fsync)
        self._next = count
        return int(steps.size)

    def close(self, opt_state: Any = None) -> None:
        """Write the last rows (from ``opt_state`` if given) and close the file; idempotent."""
        if self._closed:
            return
        try:
            if opt_state is not None:
                self.write(opt_state)
        finally:
            self._closed = True
            if self._writer is not None:
                self._writer.close()
                self._writer = None
