"""The hostile corpus's machinery: what a case is, how one runs in its own process under a memory
cap and a time limit, and how its outcome is classified.

A case writes its inputs into a fresh directory, then runs the command line (``refinedlr ...``,
in-process in the case's own process) or a Python function of the library. Its outcome is one of

* ``refused``: exit status 2 (or, for the API, a library error) with one line of at most about
  200 characters (plus the file name) that names the file or option, no traceback, and nothing
  written;
* ``accepted``: exit status 0 (or a return value), no warning, and the case's own check passes;
* ``warned``: accepted, with one or more one-line warnings (naming what the case expects);
* ``missing-extra``: exit status 3, naming the extra to install;

or a failure: ``traceback`` (an unexpected exception), ``bad-message`` (refused, but not in one
short line naming the file), ``wrote-output`` (refused, but a file was written), ``wrong`` (the
case's check failed), ``memory`` (``MemoryError`` under the cap), ``crash`` (killed by a signal),
``hang`` (over the time limit).

The runner (:mod:`runner`) imports every library once and forks a child per case: the child sets
``RLIMIT_AS`` (and ``RLIMIT_FSIZE`` where a case simulates a full disk) before touching the input,
so a crash, a hang or an exhaustion is the case's alone and is attributed to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import resource
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: The outcomes a case may expect; every other outcome is a failure.
GOOD_OUTCOMES = ("refused", "accepted", "warned", "missing-extra")
FAILURES = ("traceback", "bad-message", "wrote-output", "wrong", "memory", "crash", "hang")
#: An error line's length, not counting the path it names.
LINE_BUDGET = 260

Make = Callable[[Path], dict[str, str]]


@dataclasses.dataclass
class Case:
    """One hostile input.

    ``make(dir)`` writes the inputs and returns the substitutions for ``argv`` and ``names``
    (``{in}`` at least; ``{dir}`` is added). Either ``argv`` (the command line) or ``api``
    (``api(dir, subs)``, a call of the library) runs it. ``expect`` is the outcome (or outcomes:
    a case other helpers' work may move from one good outcome to another). ``names`` must appear
    in the error line (or the API error); ``warns`` in a warning. ``check(dir, subs, result)``
    verifies an accepted case's output (raising ``AssertionError``). ``fsize`` caps the size of the
    files the case may write (a full disk). ``needs`` names modules the case requires.
    """

    id: str
    make: Make
    argv: Sequence[str] | None = None
    api: Callable[[Path, dict[str, str]], Any] | None = None
    expect: str | tuple[str, ...] = "refused"
    names: str = "{in}"
    warns: str = ""
    check: Callable[[Path, dict[str, str], dict[str, Any]], None] | None = None
    fsize: int | None = None
    needs: tuple[str, ...] = ()
    #: the case writes files before it is refused (a second writer after the first): the
    #: nothing-written check is left out
    may_write: bool = False
    #: exception types an API case may be refused with (default: the library's errors)
    errors: tuple[type[BaseException], ...] | None = None

    @property
    def surface(self) -> str:
        return self.id.split("-", 1)[0].rstrip("1")

    @property
    def expected(self) -> tuple[str, ...]:
        return (self.expect,) if isinstance(self.expect, str) else tuple(self.expect)


def _fill(text: str, subs: dict[str, str]) -> str:
    for k, v in subs.items():
        text = text.replace("{" + k + "}", v)
    return text


def _listing(d: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in d.rglob("*"):
        try:
            out[str(p.relative_to(d))] = -1 if p.is_dir() else p.lstat().st_size
        except OSError:
            pass
    return out


def _library_errors() -> tuple[type[BaseException], ...]:
    from refinedlr.bounds import BoundError
    from refinedlr.plan import PlanError
    from refinedlr.records import RecordError
    from refinedlr.refinement import RefineError
    from refinedlr.schedules import ScheduleError

    return (RecordError, ScheduleError, RefineError, BoundError, PlanError)


def _short(line: str, work: Path) -> bool:
    """At most :data:`LINE_BUDGET` characters besides the paths of the case's files."""
    return len(line.replace(str(work), "")) <= LINE_BUDGET


def run_in_child(case: Case, work: Path) -> dict[str, Any]:
    """Run ``case`` in this (forked, capped) process and classify its outcome."""
    subs = {k: str(v) for k, v in case.make(work).items()}
    subs.setdefault("dir", str(work))
    names = _fill(case.names, subs)
    before = _listing(work)
    result: dict[str, Any] = {"outcome": None, "detail": ""}
    fsize = resource.getrlimit(resource.RLIMIT_FSIZE)
    if case.fsize is not None:  # a full disk: writes past this size fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize, fsize[1]))
    try:
        if case.argv is not None:
            result.update(_run_cli([_fill(a, subs) for a in case.argv]))
        else:
            assert case.api is not None
            result.update(_run_api(case, work, subs))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, fsize)
    outcome = result.pop("raw")
    err_lines = [x for x in result["stderr"].splitlines() if x.strip()]
    warn_lines = [x for x in err_lines if x.startswith("refinedlr: warning: ")]
    error_lines = [x for x in err_lines if x not in warn_lines]
    if outcome == "exception":
        kind = result["exception"]
        outcome = "memory" if kind == "MemoryError" else "traceback"
        result["detail"] = result["traceback"][-600:]
    elif outcome == "refused":
        message = error_lines[0] if len(error_lines) == 1 else "\n".join(error_lines)
        if len(error_lines) != 1 or names not in message or not _short(message, work):
            outcome = "bad-message"
            result["detail"] = f"expected one short line naming {names!r}: {message[:600]!r}"
        elif "Traceback" in result["stderr"]:
            outcome = "traceback"
        elif not case.may_write and _listing(work) != before:
            outcome = "wrote-output"
            result["detail"] = f"files changed: {sorted(set(_listing(work)) ^ set(before))}"
        else:
            result["detail"] = message[:300]
    elif outcome in ("accepted",):
        if error_lines and case.argv is not None:
            outcome = "bad-message"
            result["detail"] = f"stderr: {result['stderr'][:600]!r}"
        else:
            warned = warn_lines or result.get("warnings")
            if warned:
                outcome = "warned"
                text = "\n".join(warn_lines or result["warnings"])
                result["detail"] = text[:300]
                if case.warns and _fill(case.warns, subs) not in text:
                    outcome = "wrong"
                    result["detail"] = f"no warning naming {case.warns!r}: {text[:600]!r}"
            if outcome in ("accepted", "warned") and case.check is not None:
                try:
                    case.check(work, subs, result)
                except Exception as exc:  # the check's own verdict
                    outcome = "wrong"
                    result["detail"] = f"check failed: {type(exc).__name__}: {exc}"[:600]
    result["outcome"] = outcome
    return result


class _Drain:
    """A pipe whose read end a thread empties into memory (no file, so a file-size limit on
    the case does not touch its output)."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.data = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while chunk := os.read(self.read_fd, 1 << 16):
            if len(self.data) < 1 << 20:
                self.data += chunk

    def close(self) -> str:
        os.close(self.write_fd)
        self.thread.join(10)
        os.close(self.read_fd)
        return self.data.decode("utf-8", "replace")


def _run_cli(argv: list[str]) -> dict[str, Any]:
    from refinedlr.cli import main

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    out, err = _Drain(), _Drain()
    os.dup2(out.write_fd, 1)
    os.dup2(err.write_fd, 2)
    result: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            status = main(argv)
    except SystemExit as exc:  # argparse
        status = exc.code if isinstance(exc.code, int) else 2
    except BaseException as exc:
        result = {"raw": "exception", "exception": type(exc).__name__}
        result["traceback"] = "".join(traceback.format_exception(exc))
        status = None
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
    stdout, stderr = out.close(), err.close()
    if not result:
        raw = {0: "accepted", 2: "refused", 3: "missing-extra"}.get(status, "exception")  # type: ignore[arg-type]
        result = {"raw": raw}
        if raw == "exception":
            result.update(exception=f"exit status {status}", traceback=stderr)
    result.update(status=status, stdout=stdout[-4000:], stderr=stderr[-4000:])
    if "Traceback (most recent call last)" in stderr and result["raw"] != "exception":
        result.update(raw="exception", exception="traceback on stderr", traceback=stderr)
    return result


def _run_api(case: Case, work: Path, subs: dict[str, str]) -> dict[str, Any]:
    errors = case.errors or _library_errors()
    names = _fill(case.names, subs)
    buf = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(buf):
        warnings.simplefilter("always")
        try:
            value = case.api(work, subs)  # type: ignore[misc]
        except errors as exc:
            message = str(exc)
            raw: dict[str, Any] = {"raw": "refused", "stderr": f"refinedlr: error: {message}"}
            if "\n" in message.strip():
                raw["stderr"] = f"{message}\n(more than one line)"
            return {**raw, "exception": type(exc).__name__}
        except BaseException as exc:
            return {
                "raw": "exception",
                "exception": type(exc).__name__,
                "traceback": "".join(traceback.format_exception(exc)),
                "stderr": "",
            }
    warned = [
        one_line(str(w.message))
        for w in caught
        if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))
    ]
    runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    result: dict[str, Any] = {
        "raw": "accepted",
        "stderr": buf.getvalue(),
        "value": repr(value)[:200],
    }
    result["warnings"] = warned
    result["returned"] = value
    if runtime:  # a raw numpy warning is a bug, not a notice
        result = {"raw": "exception", "exception": "RuntimeWarning", "stderr": ""}
        result["traceback"] = "; ".join(str(w.message) for w in runtime)
    if names and names not in "".join(warned) and warned and case.expect == "warned":
        result["detail"] = f"warning does not name {names!r}"
    return result


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def json_default(v: Any) -> Any:
    return repr(v)


def dump(result: dict[str, Any]) -> str:
    result = {k: v for k, v in result.items() if k != "returned"}
    return json.dumps(result, default=json_default)
