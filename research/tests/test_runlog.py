"""The invocation log: one behaviour on bad lines (skipped with a warning that names them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refinedlr_bench.runlog import RUNLOG, append_runlog, read_runlog


def test_entries_come_back_in_order(tmp_path: Path) -> None:
    for i in range(3):
        append_runlog(tmp_path, {"command": f"c{i}", "wall_seconds": float(i), "inf": float("inf")})
    entries = read_runlog(tmp_path)
    assert [e["command"] for e in entries] == ["c0", "c1", "c2"]
    assert entries[0]["inf"] == "inf"  # strict JSON on disk
    for line in (tmp_path / RUNLOG).read_text().splitlines():
        json.loads(line)


def test_no_log_is_no_entries(tmp_path: Path) -> None:
    assert read_runlog(tmp_path) == []


def test_bad_lines_are_skipped_with_a_warning_naming_them(tmp_path: Path) -> None:
    (tmp_path / RUNLOG).write_text('{"command": "a"}\n{"comma\n[1, 2]\n\n{"command": "b"}\n')
    with pytest.warns(RuntimeWarning) as caught:
        entries = read_runlog(tmp_path)
    assert [e["command"] for e in entries] == ["a", "b"]
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        f"{tmp_path / RUNLOG}:2: not a JSON object; line skipped",
        f"{tmp_path / RUNLOG}:3: not a JSON object; line skipped",
    ]


def test_an_entry_after_a_half_written_line_starts_a_new_line(tmp_path: Path) -> None:
    (tmp_path / RUNLOG).write_text('{"command": "a"}\n{"command": "kil')  # killed mid-write
    append_runlog(tmp_path, {"command": "b"})
    with pytest.warns(RuntimeWarning, match=":2: "):
        entries = read_runlog(tmp_path)
    assert [e["command"] for e in entries] == ["a", "b"]
