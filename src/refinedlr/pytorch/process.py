"""What a recorder needs to know about its process: its rank, and when the process is told to stop.

On ``SIGTERM`` :func:`flush_on_sigterm`'s objects are flushed (not in a forked child), then the
handler installed before runs (``SIG_DFL``: restored and the signal sent again); the last object to
leave puts that handler back.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import weakref
from types import FrameType
from typing import Any

import torch


def env_rank() -> int | None:
    """The rank a launcher put in the environment: ``RANK``, else ``LOCAL_RANK``, else ``None``.

    >>> import os; os.environ["RANK"] = "3"; env_rank()
    3
    >>> del os.environ["RANK"]
    """
    for var in ("RANK", "LOCAL_RANK"):
        value = os.environ.get(var, "").strip()
        if value.isdigit():
            return int(value)
    return None


def process_rank() -> int | None:
    """``torch.distributed``'s rank while a process group exists, else ``None``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return int(torch.distributed.get_rank())
    return None


_registered: weakref.WeakSet[Any] = weakref.WeakSet()
_previous: Any = None  # the handler before ours (while ours is installed)
_pid = -1  # the process that installed it (a forked child's copies are the parent's to write)
_lock = threading.Lock()
_handling = False  # a handler installed after ours may call ours again: run once


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _handling
    if _handling:
        return
    _handling = True
    try:
        for obj in list(_registered) if os.getpid() == _pid else ():
            try:
                obj.flush()
            except Exception as exc:  # the others still flush; say it on one line
                print(f"refinedlr: on SIGTERM, {obj!r} could not write: {exc}", file=sys.stderr)
        previous = _previous
        if callable(previous):
            previous(signum, frame)
        if callable(previous) or previous == signal.SIG_IGN:
            return
    finally:
        _handling = False
    # SIG_DFL or a handler installed from C: terminate as the process would have
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def flush_on_sigterm(obj: Any) -> bool:
    """Call ``obj.flush()`` on SIGTERM (weakly held); returns whether the handler is installed."""
    global _previous, _pid
    with _lock:
        if signal.getsignal(signal.SIGTERM) is not _on_sigterm:
            if threading.current_thread() is not threading.main_thread():
                return False
            _previous = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, _on_sigterm)
        _pid = os.getpid()
        _registered.add(obj)
        return True


def stop_flushing_on_sigterm(obj: Any) -> None:
    """Forget ``obj``; the last one to leave puts the previous handler back (if ours is current)."""
    global _previous
    with _lock:
        _registered.discard(obj)
        main = threading.current_thread() is threading.main_thread()
        if _registered or signal.getsignal(signal.SIGTERM) is not _on_sigterm or not main:
            return  # (signal.signal works in the main thread only: then ours stays, harmless)
        signal.signal(signal.SIGTERM, _previous if _previous is not None else signal.SIG_DFL)
        _previous = None
