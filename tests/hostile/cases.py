"""The hostile corpus: inputs to the command line (``cli-``), the library's functions (``api-``),
the record writer (``writer-``) and the PyTorch recorder (``recorder-``), each with the outcome it
must have (see :mod:`corpus`). ``cli1-`` cases are those of tests/test_hostile_inputs.py, run here
under the memory cap too; ``cli-`` cases are new. Case ids are unique; :data:`CASES` lists them."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import pickle
import signal
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from corpus import Case, Make

T = np.arange(400)
#: norms refinement takes without a warning (see test_hostile_inputs.GOOD for a decaying record)
FLAT = (2 + 0.3 * np.sin(T / 7) + 0.5 * np.exp(-T / 50)).tolist()
DEEP = "[" * 100_000 + "]" * 100_000
LIB_ERRORS = "RecordError, ScheduleError, RefineError, BoundError"

# -- inputs ----------------------------------------------------------------------------------------


def csv_text(values: list[float], header: str = "step,l2", sep: str = ",") -> str:
    return header + "\n" + "".join(f"{i}{sep}{float(v)!r}\n" for i, v in enumerate(values))


def put(name: str, content: str | bytes | Callable[[Path], None], **more: Any) -> Make:
    """Write ``content`` to ``name`` (and ``more``: name -> content, available as ``{key}`` with
    the file name's stem as key); ``{in}`` is the first file."""

    def write(p: Path, c: str | bytes | Callable[[Path], None]) -> None:
        p.parent.mkdir(parents=True, exist_ok=True)
        if callable(c):
            c(p)
        elif isinstance(c, bytes):
            p.write_bytes(c)
        else:
            p.write_text(c, encoding="utf-8", errors="surrogatepass")

    def make(d: Path) -> dict[str, str]:
        p = d / name
        write(p, content)
        subs = {"in": str(p)}
        for key, c in more.items():
            q = d / key.replace("__", ".")
            write(q, c)
            subs[key.split("__")[0]] = str(q)
        return subs

    return make


def flat(name: str = "norms.csv", **more: Any) -> Make:
    """A plain record, and a second run's (``{run2}``: verify refuses the same record twice)."""
    more.setdefault("run2__csv", csv_text([1.01 * v for v in FLAT]))
    return put(name, csv_text(FLAT), **more)


def fifo(d: Path, name: str) -> str:
    p = d / name
    os.mkfifo(p)
    return str(p)


def with_fifo(name: str, base: Make | None = None) -> Make:
    def make(d: Path) -> dict[str, str]:
        subs = base(d) if base is not None else {}
        subs["fifo"] = fifo(d, name)
        subs.setdefault("in", subs["fifo"])
        return subs

    return make


def npy_bytes(arr: Any, **kw: Any) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, **kw)
    return buf.getvalue()


def lying_npy(shape: tuple[int, ...]) -> bytes:
    import io

    buf = io.BytesIO()
    header = np.lib.format.header_data_from_array_1_0(np.zeros(3))
    header["shape"] = shape
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + np.zeros(3).tobytes()


def sparse_npy(n: int) -> Callable[[Path], None]:
    def write(p: Path) -> None:
        with open(p, "wb") as f:
            header = np.lib.format.header_data_from_array_1_0(np.zeros(3))
            header["shape"] = (n,)
            np.lib.format.write_array_header_1_0(f, header)
            f.truncate(f.tell() + 8 * n)

    return write


def gz_stream(chunk: bytes, times: int, head: bytes = b"") -> Callable[[Path], None]:
    """A gzip file expanding to ``head + chunk * times``, written without holding it."""

    def write(p: Path) -> None:
        z = zlib.compressobj(9, zlib.DEFLATED, 31)
        with open(p, "wb") as f:
            f.write(z.compress(head))
            for _ in range(times):
                f.write(z.compress(chunk))
            f.write(z.flush())

    return write


def bz2_lines(n: int) -> Callable[[Path], None]:
    """A bzip2 file expanding to ``n`` (and a few more) lines: concatenated streams, each of a
    million lines, compressed once."""

    def write(p: Path) -> None:
        block = bz2.compress(b"1\n" * 1_000_000, 9)
        p.write_bytes(block * (n // 1_000_000 + 1))

    return write


def xz_lines(n: int) -> Callable[[Path], None]:
    def write(p: Path) -> None:
        block = lzma.compress(b"1\n" * 1_000_000, preset=1)
        p.write_bytes(block * (n // 1_000_000 + 1))

    return write


def sparse_file(size: int, head: bytes = b"step,l2\n") -> Callable[[Path], None]:
    def write(p: Path) -> None:
        with open(p, "wb") as f:
            f.write(head)
            f.truncate(size)

    return write


def trainer_state(entries: Any, **extra: Any) -> str:
    return json.dumps({"global_step": 400, "log_history": entries, **extra})


def state_entries(values: list[float]) -> list[dict[str, Any]]:
    return [{"step": i + 1, "grad_norm": v, "loss": 1.0} for i, v in enumerate(values)]


def jsonl(values: list[float], key: str = "grad_norm") -> str:
    return "".join(
        json.dumps({"step": i, key: v, "loss": 2.0}) + "\n" for i, v in enumerate(values)
    )


def spec_json(spec: Any) -> str:
    return json.dumps({"refinedlr_schedule": 1, "spec": spec})


def events(points: list[tuple[int, float]], tag: str = "grad_norm") -> Callable[[Path], None]:
    """A TensorBoard event file at the given path's directory (the path is its name)."""

    def write(p: Path) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        d = p.parent
        w = EventFileWriter(str(d))
        for step, value in points:
            v = summary_pb2.Summary.Value(tag=tag, simple_value=value)
            w.add_event(event_pb2.Event(step=step, summary=summary_pb2.Summary(value=[v])))
        w.close()
        (written,) = d.glob("events.out.tfevents.*")
        written.rename(p)

    return write


def cut_events(fraction: float | None, cut_bytes: int = 0, flip: bool = False) -> Make:
    def make(d: Path) -> dict[str, str]:
        run = d / "run"
        run.mkdir()
        f = run / "events.out.tfevents.1.host"
        events([(s, 1.0 + s / 400) for s in range(400)])(f)
        data = bytearray(f.read_bytes())
        if flip:
            data[len(data) // 2] ^= 0xFF
        elif fraction is not None:
            data = data[: int(len(data) * fraction)]
        else:
            data = data[: len(data) - cut_bytes]
        f.write_bytes(bytes(data))
        return {"in": str(run), "file": str(f)}

    return make


def huge_length_event(d: Path) -> dict[str, str]:
    f = d / "events.out.tfevents.2.host"
    f.write_bytes(struct.pack("<Q", 2**62) + b"\x00" * 40)
    return {"in": str(f)}


# -- checks of accepted cases ----------------------------------------------------------------------


def schedule_written(
    key: str = "out", steps: int = 400, last_zero: bool = True
) -> Callable[..., None]:
    def check(d: Path, subs: dict[str, str], result: dict[str, Any]) -> None:
        from refinedlr import load_schedule

        s = load_schedule(subs[key])
        values = s.preview()
        assert s.total_steps == steps, s.total_steps
        assert np.all(np.isfinite(values)) and 0 < values.max() <= 1.0
        assert values[-1] == 0.0 or not last_zero, values[-1]

    return check


def files_exist(*keys: str) -> Callable[..., None]:
    def check(d: Path, subs: dict[str, str], result: dict[str, Any]) -> None:
        for k in keys:
            assert Path(subs[k]).stat().st_size > 0, f"{subs[k]} missing"

    return check


def stdout_has(text: str) -> Callable[..., None]:
    def check(d: Path, subs: dict[str, str], result: dict[str, Any]) -> None:
        assert text in result["stdout"], result["stdout"][-500:]

    return check


def record_of(n: int, kinds: tuple[str, ...] = ("l2",)) -> Callable[..., None]:
    def check(d: Path, subs: dict[str, str], result: dict[str, Any]) -> None:
        rec = result["returned"]
        assert len(rec) == n and rec.kinds == kinds, (len(rec), rec.kinds)

    return check


# -- the command line: tests/test_hostile_inputs.py's cases, under the cap -------------------------


def _from_test_hostile_inputs() -> list[Case]:
    import test_hostile_inputs as old

    out = []
    for c in old.CASES:

        def make(d: Path, c: Any = c) -> dict[str, str]:
            work = d / "work"
            work.mkdir()
            if c.id == "show-norms-hostile":
                old.norms_csv([1e308] * 400, "bad.csv")(work)
            return {"in": str(c.make(work)), "dir": str(work)}

        needs = (c.needs,) if c.needs else ()
        out.append(Case(f"cli1-{c.id}", make, argv=c.argv, names=c.names, needs=needs))
    return out


R = ("refine", "{in}", "-o", "{dir}/out.json")
TB = ("tensorboard",)
MPL = ("matplotlib",)
TORCH = ("torch",)

CLI: list[Case] = [
    # -- JSON: nesting and number length
    Case("cli-trainer-state-nested-1e5", put("trainer_state.json", '{"log_history": ' + DEEP + "}"), R),
    Case("cli-jsonl-nested-1e5", put("log.jsonl", jsonl(FLAT[:5]) + '{"a": ' + DEEP + "}\n"), R),
    Case("cli-jsonl-nested-65", put("log.jsonl", jsonl(FLAT[:5]) + '{"a": ' + "[" * 65 + "]" * 65 + "}\n"), R),
    Case("cli-schedule-json-nested-show", put("s.json", '{"spec": ' + DEEP + "}"), ("show", "{in}")),
    Case("cli-schedule-json-nested-as", put("s.json", '{"spec": ' + DEEP + "}"), ("show", "{in}", "--as", "schedule")),
    Case("cli-verify-schedule-nested", flat(s__json='{"spec": ' + DEEP + "}"),
         ("verify", "{in}", "{run2}", "--schedule", "{s}", "-o", "{dir}/o.json"), names="{s}"),
    Case("cli-verify-source-nested", flat(s__json='{"spec": ' + DEEP + "}"),
         ("verify", "{in}", "{run2}", "--source-schedule", "{s}", "-o", "{dir}/o.json"), names="{s}"),
    Case("cli-plot-schedule-nested", put("s.json", '{"spec": ' + DEEP + "}"),
         ("plot", "{in}", "--as", "schedule", "-o", "{dir}/f.png"), needs=MPL),
    Case("cli-jsonl-5000-digits", put("log.jsonl", jsonl(FLAT[:5]) + '{"step": 5, "grad_norm": ' + "9" * 5000 + "}\n"), R),
    Case("cli-jsonl-5000-digit-step", put("log.jsonl", '{"step": ' + "9" * 5000 + ', "grad_norm": 1}\n'), R),
    Case("cli-trainer-state-5000-digits", put("trainer_state.json", '{"log_history": [{"step": 1, "grad_norm": ' + "7" * 5000 + "}]}"), R),
    Case("cli-trainer-state-long-float", put("trainer_state.json", '{"log_history": [{"step": 1, "grad_norm": 1.' + "5" * 300 + "}]}"), R),
    Case("cli-spec-5000-digit-steps", put("s.json", '{"spec": {"name": "linear", "total_steps": ' + "1" * 5000 + "}}"), ("show", "{in}")),
    Case("cli-jsonl-huge-exponent", put("log.jsonl", jsonl(FLAT[:200]) + '{"step": 200, "grad_norm": 1e99999}\n' + "".join(json.dumps({"step": i, "grad_norm": v}) + "\n" for i, v in enumerate(FLAT[201:], 201))),
         R, expect="warned", warns="missing"),
    Case("cli-trainer-state-nested-log-entry", put("trainer_state.json", trainer_state([{"step": 1, "grad_norm": 1.0, "x": json.loads("[" * 70 + "]" * 70)}])), R),
    Case("cli-jsonl-depth-within-limit", put("log.jsonl", "".join(json.dumps({"step": i, "grad_norm": v, "x": json.loads("[" * 60 + "]" * 60)}) + "\n" for i, v in enumerate(FLAT))),
         ("refine", "{in}", "-o", "{dir}/out.json"), expect="accepted", check=lambda d, s, r: schedule_written()(d, {"out": s["dir"] + "/out.json"}, r)),
    Case("cli-jsonl-surrogate-key", put("log.jsonl", "".join(f'{{"step": {i}, "\\ud800g": {v}}}\n' for i, v in enumerate(FLAT))),
         ("show", "{in}"), expect="accepted", check=stdout_has("\\ud800g")),
    Case("cli-jsonl-empty-key-huge", put("log.jsonl", "".join(json.dumps({"step": i, "k" * 100_000: v}) + "\n" for i, v in enumerate(FLAT[:50]))),
         ("refine", "{in}", "-o", "{dir}/o.json", "--column", "nope")),
    # -- budgets: bytes, lines, values, columns
    Case("cli-gzip-bomb-lines", put("n.csv.gz", gz_stream(b"1\n" * 500_000, 1024)), R),
    Case("cli-gzip-bomb-bytes", put("n.csv.gz", gz_stream(b"0" * 1_000_000, 700, b"step,l2\n0,")), R),
    Case("cli-gzip-bomb-cr-lines", put("n.csv.gz", gz_stream(b"1\r" * 500_000, 45)), R),
    Case("cli-gzip-bomb-show", put("n.csv.gz", gz_stream(b"1\n" * 500_000, 45)), ("show", "{in}")),
    Case("cli-gzip-bomb-plot", put("n.csv.gz", gz_stream(b"1\n" * 500_000, 45)), ("plot", "{in}", "-o", "{dir}/f.png"), needs=MPL),
    Case("cli-gzip-bomb-verify", put("n.csv.gz", gz_stream(b"1\n" * 500_000, 45)), ("verify", "{in}", "{in}", "-o", "{dir}/o.json")),
    Case("cli-gzip-bomb-trainer-state", put("trainer_state.json.gz", gz_stream(b" " * 1_000_000, 400, b'{"log_history": [')), R),
    Case("cli-gzip-bomb-jsonl", put("log.jsonl.gz", gz_stream(b"\n" * 1_000_000, 25)), R),
    Case("cli-gzip-bomb-npy", put("n.npy.gz", gz_stream(b"\0" * 1_000_000, 700, npy_bytes(np.zeros(3))[:128])), R),
    Case("cli-gzip-bomb-schedule-csv", put("s.csv.gz", gz_stream(b"1\n" * 500_000, 45)), R),
    Case("cli-bz2-bomb-lines", put("n.csv.bz2", bz2_lines(21_000_000)), R),
    Case("cli-xz-bomb-lines", put("n.csv.xz", xz_lines(21_000_000)), R),
    Case("cli-sparse-plain-over-budget", put("n.csv", sparse_file(700_000_000)), ("refine", "{in}", "--format", "csv", "-o", "{dir}/o.json")),
    Case("cli-sparse-jsonl-over-budget", put("n.jsonl", sparse_file(700_000_000, b'{"step": 0}\n')), R),
    Case("cli-sparse-trainer-state", put("trainer_state.json", sparse_file(400_000_000, b'{"log_history": [')), R),
    Case("cli-npy-sparse-over-budget", put("n.npy", sparse_npy(100_000_000)), R),
    Case("cli-npy-lying-1e15", put("n.npy", lying_npy((10**15,))), R),
    Case("cli-npy-lying-2d", put("n.npy", lying_npy((10**8, 10**8))), R),
    Case("cli-70000-columns", put("n.csv", ",".join(f"c{j}" for j in range(70_000)) + "\n" + ",".join(["1"] * 70_000) + "\n"), R),
    Case("cli-too-many-values", put("n.csv.gz", gz_stream(b",".join([b"1"] * 1000) + b"\n", 9000, b",".join(b"c%d" % j for j in range(1000)) + b"\n")),
         ("refine", "{in}", "--max-steps", "1", "-o", "{dir}/o.json")),
    Case("cli-one-100mb-line", put("n.csv", lambda p: p.write_bytes(b"1" * 100_000_000)), R),
    Case("cli-jsonl-100k-keys", put("log.jsonl", json.dumps({f"k{j}": 1 for j in range(100_000)}) + "\n"), R),
    Case("cli-wandb-many-series", put("export.csv", '"Step",' + ",".join(f'"run{j} - grad_norm"' for j in range(5000)) + "\n0," + ",".join(["1"] * 5000) + "\n"), R),
    # -- step arithmetic and limits
    Case("cli-step-offset-1e23", flat(), ("refine", "{in}", "--step-offset", "100000000000000000000000", "-o", "{dir}/o.json"), names="--step-offset"),
    Case("cli-step-offset-minus-1e23", flat(), ("refine", "{in}", "--step-offset", "-100000000000000000000000", "-o", "{dir}/o.json"), names="--step-offset"),
    Case("cli-step-offset-float", flat(), ("refine", "{in}", "--step-offset", "1e23", "-o", "{dir}/o.json"), names="--step-offset"),
    Case("cli-step-offset-5000-digits", flat(), ("refine", "{in}", "--step-offset", "9" * 5000, "-o", "{dir}/o.json"), names="--step-offset"),
    Case("cli-step-offset-2e53", flat(), ("refine", "{in}", "--step-offset", str(2**53), "-o", "{dir}/o.json")),
    Case("cli-step-offset-at-limit", flat(), ("refine", "{in}", "--step-offset", "9999700", "-o", "{dir}/o.json")),
    Case("cli-step-offset-show", flat(), ("show", "{in}", "--step-offset", str(-(2**53)))),
    Case("cli-max-steps-1e13", put("n.csv", "step,l2\n0,1\n1,2\n2,3\n1000000000000,4\n"), ("refine", "{in}", "--max-steps", str(10**13), "-o", "{dir}/o.json"), names="--max-steps"),
    Case("cli-max-steps-1e20", flat(), ("show", "{in}", "--max-steps", str(10**20)), names="--max-steps"),
    Case("cli-max-steps-zero", flat(), ("show", "{in}", "--max-steps", "0"), names="--max-steps"),
    Case("cli-max-steps-text", flat(), ("show", "{in}", "--max-steps", "lots"), names="--max-steps"),
    Case("cli-step-2e63", put("n.csv", "step,l2\n0,1\n9223372036854775808,2\n"), R),
    Case("cli-step-1e400", put("n.csv", "step,l2\n0,1\n1e400,2\n"), R),
    Case("cli-jsonl-step-2e64", put("log.jsonl", '{"step": 18446744073709551616, "grad_norm": 1}\n'), R),
    Case("cli-tensorboard-step-2e62", put("events.out.tfevents.3.host", events([(0, 1.0), (2**62, 2.0)])), R, needs=TB),
    Case("cli-tensorboard-negative-step", put("events.out.tfevents.4.host", events([(0, 1.0), (-5, 2.0)])), R, needs=TB),
    Case("cli-npy-step-field-uint64-max", put("n.npy", npy_bytes(np.array([(0, 1.0), (2**64 - 1, 2.0)], dtype=[("step", "u8"), ("l2", "f8")]))), R),
    Case("cli-spec-total-steps-2e63", put("s.json", spec_json({"name": "linear", "total_steps": 2**63})), ("show", "{in}")),
    Case("cli-max-steps-raises-a-sparse-log", put("n.csv", "step,l2\n" + "".join(f"{i * 26_000},{v}\n" for i, v in enumerate(FLAT))),
         ("show", "{in}", "--max-steps", "10500000"), expect="accepted", check=stdout_has("400 rows")),
    # -- outputs: read-only files, full disks, all or none
    Case("cli-output-read-only", flat(out__json=lambda p: (p.write_text("keep\n"), p.chmod(0o444))), ("refine", "{in}", "-o", "{out}"), names="{out}"),
    Case("cli-plot-output-read-only", flat(f__png=lambda p: (p.write_bytes(b"keep"), p.chmod(0o444))), ("refine", "{in}", "-o", "{dir}/o.json", "--plot", "{f}"), names="{f}", needs=MPL),
    Case("cli-verify-output-read-only", flat(out__json=lambda p: (p.write_text("keep\n"), p.chmod(0o400))), ("verify", "{in}", "{run2}", "-o", "{out}"), names="{out}"),
    Case("cli-plot-command-read-only", flat(f__png=lambda p: (p.write_bytes(b"keep"), p.chmod(0o444))), ("plot", "{in}", "-o", "{f}"), names="{f}", needs=MPL),
    Case("cli-full-disk-during-plot", flat(), ("refine", "{in}", "-o", "{dir}/o.json", "--plot", "{dir}/f.png"), names="{dir}/f.png", fsize=30_000, needs=MPL),
    Case("cli-full-disk-schedule", flat(), ("refine", "{in}", "-o", "{dir}/o.json"), names="{dir}/o.json", fsize=4_000),
    Case("cli-full-disk-npy-schedule", flat(), ("refine", "{in}", "-o", "{dir}/o.npy", "--steps", "100000"), names="{dir}/o.npy", fsize=100_000),
    Case("cli-full-disk-verify", flat(), ("verify", "{in}", "{run2}", "-o", "{dir}/o.json"), names="{dir}/o.json", fsize=100),
    Case("cli-full-disk-plot-command", flat(), ("plot", "{in}", "-o", "{dir}/f.png"), names="{dir}/f.png", fsize=10_000, needs=MPL),
    Case("cli-full-disk-existing-output-kept", flat(out__json="previous\n"), ("refine", "{in}", "-o", "{out}", "--plot", "{dir}/f.png"),
         names="{dir}/f.png", fsize=30_000, needs=MPL),
    Case("cli-mathtext-file-name", put("$x^$.csv", csv_text(FLAT)), ("plot", "{in}", "-o", "{dir}/f.png"), expect=("refused", "accepted"), names="f.png", needs=MPL),
    Case("cli-mathtext-title", flat(), ("plot", "{in}", "-o", "{dir}/f.png", "--title", "$\\frac{1}{$"), expect=("refused", "accepted"), names="f.png", needs=MPL),
    Case("cli-mathtext-refine-plot", put("$\\sqrt{$.csv", csv_text(FLAT)), ("refine", "{in}", "-o", "{dir}/o.json", "--plot", "{dir}/f.png"),
         expect=("refused", "accepted"), names="f.png", needs=MPL),
    # -- column choice: a norm column that does not parse is never replaced by another
    Case("cli-text-grad-norm-csv", put("n.csv", "step,loss,grad_norm\n" + "".join(f"{i},{v},abc\n" for i, v in enumerate(FLAT))), R),
    Case("cli-text-grad-norm-tsv", put("n.tsv", "step\tloss\tgrad_norm\n" + "".join(f"{i}\t{v}\tn/a\n" for i, v in enumerate(FLAT))), R),
    Case("cli-text-grad-norm-semicolon", put("n.csv", "step;loss;grad_norm\n" + "".join(f"{i};{v};-\n" for i, v in enumerate(FLAT))), R),
    Case("cli-text-l1-column", put("n.csv", "step,loss,l1\n" + "".join(f"{i},{v},x\n" for i, v in enumerate(FLAT))), ("refine", "{in}", "--norm", "l1", "-o", "{dir}/o.json")),
    Case("cli-empty-train-grad-norm", put("n.csv", "step,loss,train/grad_norm\n" + "".join(f"{i},{v},\n" for i, v in enumerate(FLAT))), R),
    Case("cli-jsonl-text-grad-norm", put("log.jsonl", jsonl([0.0] * 50).replace("0.0", '"big"')), R),
    Case("cli-jsonl-null-grad-norm", put("log.jsonl", "".join(json.dumps({"step": i, "grad_norm": None, "loss": 1.0}) + "\n" for i in range(50))), R),
    Case("cli-npy-string-grad-norm", put("n.npy", npy_bytes(np.zeros(50, dtype=[("step", "i8"), ("loss", "f8"), ("grad_norm", "U4")]))), R),
    Case("cli-wandb-text-grad-norm", put("export.csv", '"Step","run - grad_norm"\n' + "".join(f'{i},"x"\n' for i in range(50))), R),
    Case("cli-text-grad-norm-explicit-loss", put("n.csv", "step,loss,grad_norm\n" + "".join(f"{i},{v},abc\n" for i, v in enumerate(FLAT))),
         ("refine", "{in}", "--column", "loss", "-o", "{dir}/o.json"), expect="accepted"),
    Case("cli-text-grad-norm-show", put("n.csv", "step,loss,grad_norm\n" + "".join(f"{i},{v},abc\n" for i, v in enumerate(FLAT))), ("show", "{in}")),
    Case("cli-text-grad-norm-verify", put("n.csv", "step,loss,grad_norm\n" + "".join(f"{i},{v},abc\n" for i, v in enumerate(FLAT))), ("verify", "{in}", "{in}", "-o", "{dir}/o.json")),
    # -- truncated or damaged TensorBoard event files: warned, naming the file and the steps read
    Case("cli-tensorboard-cut-31", cut_events(0.31), ("show", "{in}"), expect="warned", warns="{file}", needs=TB),
    Case("cli-tensorboard-cut-62", cut_events(0.62), ("show", "{in}"), expect="warned", warns="{file}", needs=TB),
    Case("cli-tensorboard-cut-97", cut_events(0.97), ("show", "{in}"), expect="warned", warns="{file}", needs=TB),
    Case("cli-tensorboard-cut-7-bytes", cut_events(None, 7), ("refine", "{in}", "-o", "{dir}/o.json"), expect="warned", warns="steps 0..398", needs=TB),
    Case("cli-tensorboard-damaged-record", cut_events(None, flip=True), ("show", "{in}"), expect="warned", warns="checksum", needs=TB),
    Case("cli-tensorboard-huge-length", huge_length_event, R, needs=TB),
    Case("cli-tensorboard-empty-file", put("events.out.tfevents.5.host", b""), R, needs=TB),
    Case("cli-tensorboard-long-tag", put("events.out.tfevents.6.host", events([(0, 1.0)], tag="t" * 100_000)), R, needs=TB),
    # -- messages: short lines, whatever the input holds
    Case("cli-schedule-name-10mb", put("s.json", json.dumps({"spec": {"name": "x" * 10_000_000, "total_steps": 10}})), ("show", "{in}")),
    Case("cli-schedule-warmup-10mb", put("s.json", json.dumps({"spec": {"name": "linear", "total_steps": 10, "warmup": "w" * 10_000_000}})), ("show", "{in}")),
    Case("cli-10000-columns", put("n.csv", ",".join(f"c{j}" for j in range(10_000)) + "\n" + ",".join(["1"] * 10_000) + "\n"), R),
    Case("cli-column-100k", flat(), ("refine", "{in}", "--column", "c" * 100_000, "-o", "{dir}/o.json")),
    Case("cli-tag-100k", put("events.out.tfevents.7.host", events([(0, 1.0)])), ("refine", "{in}", "--tag", "t" * 100_000, "-o", "{dir}/o.json"), needs=TB),
    Case("cli-text-cell-10mb", put("n.csv", "step,l2\n0,1\n1," + "z" * 10_000_000 + "\n"), R),
    Case("cli-ragged-10mb-line", put("n.csv", "step,l2\n0,1\n1,2," + "3," * 3_000_000 + "\n"), R),
    Case("cli-header-name-1mb", put("n.csv", "step,l2,loss,lr\n0,1,2,3\n".replace("lr", "q" * 1_000_000)), R),
    Case("cli-cut-last-line-10mb", put("n.csv", csv_text(FLAT) + "400," + "9" * 10_000_000), ("show", "{in}"), expect="warned", warns="dropped the last line"),
    Case("cli-unknown-format-name", flat(), ("refine", "{in}", "--format", "x" * 1000, "-o", "{dir}/o.json"), names="--format"),
    Case("cli-csv-schedule-line-10mb", put("s.csv", "step,multiplier\n0,1\n1," + "m" * 10_000_000 + "\n"), ("show", "{in}", "--as", "schedule")),
    # -- decided behaviours
    Case("cli-steps-1", flat(), ("refine", "{in}", "--steps", "1", "-o", "{dir}/o.json")),
    Case("cli-steps-3", flat(), ("refine", "{in}", "--steps", "3", "-o", "{dir}/o.json")),
    Case("cli-steps-4", flat(), ("refine", "{in}", "--steps", "4", "-o", "{dir}/o.json"), expect="accepted",
         check=lambda d, s, r: schedule_written(steps=4)(d, {"out": s["dir"] + "/o.json"}, r)),
    # -- not regular files
    Case("cli-dev-zero-show", lambda d: {"in": "/dev/zero"}, ("show", "{in}")),
    Case("cli-dev-null-refine", lambda d: {"in": "/dev/null"}, R),
    Case("cli-dev-zero-as-schedule", lambda d: {"in": "/dev/zero"}, ("show", "{in}", "--as", "schedule")),
    Case("cli-verify-schedule-fifo", with_fifo("s.json", flat()), ("verify", "{in}", "{run2}", "--schedule", "{fifo}", "-o", "{dir}/o.json"), names="{fifo}"),
    Case("cli-verify-source-fifo", with_fifo("s.npy", flat()), ("verify", "{in}", "{run2}", "--source-schedule", "{fifo}", "-o", "{dir}/o.json"), names="{fifo}"),
    Case("cli-plot-fifo-schedule", with_fifo("s.npy"), ("plot", "{in}", "--as", "schedule", "-o", "{dir}/f.png"), needs=MPL),
    Case("cli-show-norms-fifo", with_fifo("n.csv", put("s.json", spec_json({"name": "linear", "total_steps": 400}))), ("show", "{in}", "--norms", "{fifo}"), names="{fifo}"),
    Case("cli-check-log-fifo", with_fifo("c.csv", flat()), ("refine", "{in}", "--method", "verified", "--check", "{fifo}", "-o", "{dir}/o.json"), names="{fifo}"),
    Case("cli-tensorboard-dir-with-fifo", with_fifo("run/events.out.tfevents.8.host", lambda d: ((d / "run").mkdir(), {"in": str(d / "run")})[1]), R, needs=TB),
    # -- well-formed inputs that must be read (no over-refusal)
    Case("cli-ok-refine", flat(), ("refine", "{in}", "-o", "{dir}/out.json"), expect="accepted", check=lambda d, s, r: schedule_written()(d, {"out": s["dir"] + "/out.json"}, r)),
    Case("cli-ok-refine-plot", flat(), ("refine", "{in}", "-o", "{dir}/o.json", "--plot", "{dir}/f.png"), expect="accepted",
         check=lambda d, s, r: files_exist("o", "f")(d, {"o": s["dir"] + "/o.json", "f": s["dir"] + "/f.png"}, r), needs=MPL),
    Case("cli-ok-gzip", put("n.csv.gz", gzip.compress(csv_text(FLAT).encode())), ("show", "{in}"), expect="accepted", check=stdout_has("400 rows")),
    Case("cli-ok-bzip2", put("n.csv.bz2", bz2.compress(csv_text(FLAT).encode())), ("show", "{in}"), expect="accepted", check=stdout_has("400 rows")),
    Case("cli-ok-xz", put("n.csv.xz", lzma.compress(csv_text(FLAT).encode())), ("show", "{in}"), expect="accepted", check=stdout_has("400 rows")),
    Case("cli-ok-crlf-bom", put("n.csv", ("\ufeff" + csv_text(FLAT)).replace("\n", "\r\n")), ("show", "{in}"), expect="accepted", check=stdout_has("400 rows")),
    Case("cli-ok-trainer-state", put("trainer_state.json", trainer_state(state_entries(FLAT))), ("show", "{in}"), expect="accepted", check=stdout_has("400 rows")),
    Case("cli-ok-jsonl", put("log.jsonl", jsonl(FLAT)), ("show", "{in}"), expect="accepted", check=stdout_has("400 rows")),
    Case("cli-ok-npy", put("n.npy", npy_bytes(np.asarray(FLAT))), ("show", "{in}"), expect="accepted", check=stdout_has("400 rows")),
    Case("cli-ok-tensorboard", put("events.out.tfevents.9.host", events([(s, v) for s, v in enumerate(FLAT)])), ("show", "{in}"), expect="accepted", check=stdout_has("400 rows"), needs=TB),
    Case("cli-ok-verify", flat(), ("verify", "{in}", "{run2}", "-o", "{dir}/o.json"), expect="accepted",
         check=lambda d, s, r: schedule_written(last_zero=False)(d, {"out": s["dir"] + "/o.json"}, r)),
    Case("cli-ok-plot", flat(), ("plot", "{in}", "-o", "{dir}/f.png"), expect="accepted", check=lambda d, s, r: files_exist("f")(d, {"f": s["dir"] + "/f.png"}, r), needs=MPL),
    Case("cli-ok-unicode-path", put("日本/é ñ.csv", csv_text(FLAT)), ("show", "{in}"), expect="accepted", check=stdout_has("400 rows")),
    Case("cli-ok-sparse", put("n.csv", "step,l2\n" + "".join(f"{10 * i},{v}\n" for i, v in enumerate(FLAT[::10]))), ("show", "{in}"), expect="accepted", check=stdout_has("sparse")),
    Case("cli-ok-resumed-log", put("n.csv", csv_text(FLAT[:300]) + "".join(f"{i},{v}\n" for i, v in enumerate(FLAT[250:], 250))),
         ("show", "{in}"), expect="accepted", check=stdout_has("logged more than once")),
    Case("cli-ok-read-only-input", flat(), ("refine", "{in}", "-o", "{dir}/o.json"), expect="accepted",
         check=lambda d, s, r: schedule_written()(d, {"out": s["dir"] + "/o.json"}, r)),
    Case("cli-ok-output-replaced", flat(out__json="previous\n"), ("refine", "{in}", "-o", "{out}"), expect="accepted", check=schedule_written()),
]  # fmt: skip


# -- the library's functions ------------------------------------------------------------------------


def read(**kw: Any) -> Callable[[Path, dict[str, str]], Any]:
    def call(d: Path, subs: dict[str, str]) -> Any:
        from refinedlr import read_record

        return read_record(subs["in"], **kw)

    return call


def load(total_steps: int | None = None) -> Callable[[Path, dict[str, str]], Any]:
    def call(d: Path, subs: dict[str, str]) -> Any:
        from refinedlr import load_schedule

        return load_schedule(subs["in"], total_steps)

    return call


def refine_of(values: Any, **kw: Any) -> Callable[[Path, dict[str, str]], Any]:
    def call(d: Path, subs: dict[str, str]) -> Any:
        from refinedlr import refine

        return refine(values, **kw)

    return call


def record_from(values: Any, steps: Any) -> Callable[[Path, dict[str, str]], Any]:
    def call(d: Path, subs: dict[str, str]) -> Any:
        from refinedlr import GradNormRecord

        return GradNormRecord.from_arrays({"l2": values}, steps=steps)

    return call


def nothing(d: Path) -> dict[str, str]:
    return {"in": str(d)}


API: list[Case] = [
    # read_record
    Case("api-read-trainer-state-nested", put("trainer_state.json", '{"log_history": ' + DEEP + "}"), api=read()),
    Case("api-read-jsonl-nested", put("log.jsonl", '{"a": ' + DEEP + "}\n"), api=read()),
    Case("api-read-json-nested-guess", put("log.json", "\n" + '{"a": ' + DEEP + "}"), api=read()),
    Case("api-read-jsonl-5000-digits", put("log.jsonl", '{"step": 0, "grad_norm": ' + "9" * 5000 + "}\n"), api=read()),
    Case("api-read-gzip-bomb", put("n.csv.gz", gz_stream(b"1\n" * 500_000, 45)), api=read()),
    Case("api-read-gzip-bomb-bytes", put("n.csv.gz", gz_stream(b"0" * 1_000_000, 700, b"step,l2\n0,")), api=read()),
    Case("api-read-bz2-bomb", put("n.csv.bz2", bz2_lines(21_000_000)), api=read()),
    Case("api-read-sparse-plain", put("n.csv", sparse_file(700_000_000)), api=read(format="csv")),
    Case("api-read-npy-lying", put("n.npy", lying_npy((10**12,))), api=read()),
    Case("api-read-npy-sparse-over-budget", put("n.npy", sparse_npy(100_000_000)), api=read()),
    Case("api-read-npy-pickle", put("n.npy", pickle.dumps([1.0, 2.0])), api=read()),
    Case("api-read-npy-object", put("n.npy", npy_bytes(np.array([1.0, None], dtype=object), allow_pickle=True)), api=read()),
    Case("api-read-pickle-gz", put("n.npy.gz", gzip.compress(pickle.dumps({"a": 1}))), api=read()),
    Case("api-read-fifo-csv", with_fifo("n.csv"), api=read()),
    Case("api-read-fifo-jsonl", with_fifo("n.jsonl"), api=read(format="jsonl")),
    Case("api-read-fifo-npy", with_fifo("n.npy"), api=read(format="npy")),
    Case("api-read-fifo-trainer-state", with_fifo("trainer_state.json"), api=read()),
    Case("api-read-fifo-tensorboard", with_fifo("events.out.tfevents.1.h"), api=read(), needs=TB),
    Case("api-read-dev-zero", lambda d: {"in": "/dev/zero"}, api=read()),
    Case("api-read-dev-urandom", lambda d: {"in": "/dev/urandom"}, api=read(format="npy")),
    Case("api-read-offset-1e30", flat(), api=read(step_offset=10**30)),
    Case("api-read-offset-minus-1e30", flat(), api=read(step_offset=-(10**30))),
    Case("api-read-offset-2e63", flat(), api=read(step_offset=2**63)),
    Case("api-read-offset-float", flat(), api=read(step_offset=1.5)),
    Case("api-read-offset-bool", flat(), api=read(step_offset=True)),
    Case("api-read-offset-tensorboard-1e30", put("events.out.tfevents.1.h", events([(0, 1.0), (1, 2.0)])), api=read(step_offset=10**30), needs=TB),
    Case("api-read-offset-trainer-state", put("trainer_state.json", trainer_state(state_entries(FLAT[:5]))), api=read(step_offset=-(10**25))),
    Case("api-read-text-grad-norm", put("n.csv", "step,loss,grad_norm\n" + "".join(f"{i},{v},abc\n" for i, v in enumerate(FLAT))), api=read()),
    Case("api-read-jsonl-text-grad-norm", put("log.jsonl", jsonl([0.0] * 9).replace("0.0", '"?"')), api=read()),
    Case("api-read-npy-string-grad-norm", put("n.npy", npy_bytes(np.zeros(9, dtype=[("loss", "f8"), ("grad_norm", "S2")]))), api=read()),
    Case("api-read-10000-columns", put("n.csv", ",".join(f"c{j}" for j in range(10_000)) + "\n" + ",".join(["1"] * 10_000) + "\n"), api=read()),
    Case("api-read-column-100k", flat(), api=read(column="c" * 100_000)),
    Case("api-read-format-10mb", flat(), api=read(format="f" * 10_000_000)),
    Case("api-read-zstd", put("n.csv.zst", b"\x28\xb5\x2f\xfd" + b"\x00" * 20), api=read()),
    Case("api-read-zip", put("n.npz", b"PK\x03\x04" + b"\x00" * 40), api=read()),
    Case("api-read-directory", nothing, api=read()),
    Case("api-read-missing", lambda d: {"in": str(d / "missing.csv")}, api=read()),
    Case("api-read-tensorboard-cut", cut_events(0.5), api=read(), expect="warned", warns="{file}", needs=TB),
    Case("api-read-tensorboard-flip", cut_events(None, flip=True), api=read(), expect="warned", warns="{file}", needs=TB),
    Case("api-read-cut-own-line", put("n.csv", csv_text(FLAT) + "400,1.2"), api=read(), expect="warned", warns="dropped the last line", check=record_of(400)),
    Case("api-read-ok-csv", flat(), api=read(), expect="accepted", check=record_of(400)),
    Case("api-read-ok-gzip-jsonl", put("log.jsonl.gz", gzip.compress(jsonl(FLAT).encode())), api=read(), expect="accepted", check=record_of(400, ("grad_norm",))),
    Case("api-read-ok-depth-64", put("log.jsonl", "".join(json.dumps({"step": i, "grad_norm": 1.0, "x": json.loads("[" * 63 + "]" * 63)}) + "\n" for i in range(10))),
         api=read(), expect="accepted", check=record_of(10, ("grad_norm",))),
    Case("api-read-ok-offset", flat(), api=read(step_offset=9_999_600), expect="accepted", check=record_of(400)),
    # load_schedule
    Case("api-load-json-nested", put("s.json", '{"spec": ' + DEEP + "}"), api=load()),
    Case("api-load-json-5000-digits", put("s.json", '{"spec": {"name": "linear", "total_steps": ' + "1" * 5000 + "}}"), api=load()),
    Case("api-load-json-name-10mb", put("s.json", json.dumps({"spec": {"name": "x" * 10_000_000, "total_steps": 10}})), api=load()),
    Case("api-load-json-array", put("s.json", "[1, 2, 3]"), api=load()),
    Case("api-load-json-not-utf8", put("s.json", b'{"spec": "\xff"}'), api=load()),
    Case("api-load-fifo-json", with_fifo("s.json"), api=load()),
    Case("api-load-fifo-npy", with_fifo("s.npy"), api=load()),
    Case("api-load-fifo-csv", with_fifo("s.csv"), api=load()),
    Case("api-load-directory-json", lambda d: ((d / "s.json").mkdir(), {"in": str(d / "s.json")})[1], api=load()),
    Case("api-load-npy-pickle", put("s.npy", pickle.dumps([1.0, 0.5, 0.0])), api=load()),
    Case("api-load-npy-lying", put("s.npy", lying_npy((10**12,))), api=load()),
    Case("api-load-npy-2d", put("s.npy", npy_bytes(np.ones((3, 3)))), api=load()),
    Case("api-load-csv-garbage", put("s.csv", "step,multiplier\n0,1\n1,x\n"), api=load()),
    Case("api-load-csv-line-10mb", put("s.csv", "step,multiplier\n0," + "7" * 10_000_000 + "\n"), api=load()),
    Case("api-load-csv-bomb", put("s.csv", gz_stream(b"0.5\n" * 250_000, 90)), api=load()),
    Case("api-load-csv-over-limit", put("s.csv", lambda p: p.write_bytes(b"0.5\n" * 10_000_005)), api=load()),
    Case("api-load-csv-empty", put("s.csv", ""), api=load()),
    Case("api-load-csv-values-out-of-range", put("s.csv", "step,multiplier\n0,2\n1,-1\n"), api=load()),
    Case("api-load-unknown-suffix", put("s.txt", "1\n"), api=load()),
    Case("api-load-horizon-huge", put("s.json", spec_json({"name": "linear", "total_steps": 100})), api=load(10**12)),
    Case("api-load-ok-json", put("s.json", spec_json({"name": "cosine", "total_steps": 100})), api=load(), expect="accepted"),
    Case("api-load-ok-npy", put("s.npy", npy_bytes(np.linspace(1, 0, 50))), api=load(), expect="accepted"),
    # refine and the record type
    Case("api-refine-all-nan", nothing, api=refine_of([float("nan")] * 50)),
    Case("api-refine-zeros", nothing, api=refine_of([0.0] * 50)),
    Case("api-refine-negative", nothing, api=refine_of([-1.0] * 50)),
    Case("api-refine-2d", nothing, api=refine_of(np.ones((4, 4)))),
    Case("api-refine-strings", nothing, api=refine_of(["a", "b", "c", "d"])),
    Case("api-refine-steps-1", nothing, api=refine_of(FLAT, total_steps=1)),
    Case("api-refine-tau-nan", nothing, api=refine_of(FLAT, tau=float("nan"))),
    Case("api-refine-power-inf", nothing, api=refine_of(FLAT, power=float("inf"))),
    Case("api-refine-1e308", nothing, api=refine_of([1e308] * 50)),
    Case("api-refine-1e-300", nothing, api=refine_of([1e-300] * 50)),
    Case("api-refine-empty", nothing, api=refine_of([])),
    Case("api-refine-horizon-1e12", nothing, api=refine_of(FLAT, total_steps=10**12)),
    Case("api-refine-ok", nothing, api=refine_of(FLAT), expect="accepted"),
    Case("api-record-steps-2e64", nothing, api=record_from([1.0, 2.0], [0, 2**64])),
    Case("api-record-steps-negative", nothing, api=record_from([1.0, 2.0], [-1, 0])),
    Case("api-record-steps-fractional", nothing, api=record_from([1.0, 2.0], [0, 1.5])),
    Case("api-record-steps-nan", nothing, api=record_from([1.0, 2.0], [0, float("nan")])),
    Case("api-record-length-mismatch", nothing, api=record_from([1.0, 2.0, 3.0], [0, 1])),
    Case("api-record-norms-1e13", nothing, api=lambda d, s: record_from([1.0, 2.0], [0, 10**13])(d, s).norms()),
]  # fmt: skip
for _c in API:
    if _c.make is nothing or _c.id.startswith(("api-refine", "api-record")):
        _c.names = ""  # no file to name


# -- the record writer --------------------------------------------------------------------------------


def writer(kinds: Any = ("l2",), **kw: Any) -> Callable[[Path, dict[str, str]], Any]:
    def call(d: Path, subs: dict[str, str]) -> Any:
        from refinedlr.records import RecordWriter

        with RecordWriter(subs["in"], kinds=kinds, **kw) as w:
            w.write([0, 1], np.ones((2, len(w.kinds))))

    return call


def writes(steps: Any, rows: Any, first: bool = True) -> Callable[[Path, dict[str, str]], Any]:
    def call(d: Path, subs: dict[str, str]) -> Any:
        from refinedlr.records import RecordWriter

        with RecordWriter(subs["in"]) as w:
            if first:
                w.write([0], [[1.0]])
            w.write(steps, rows)

    return call


def new_record(d: Path) -> dict[str, str]:
    return {"in": str(d / "run" / "r.csv")}


def second_writer(d: Path, subs: dict[str, str]) -> None:
    from refinedlr.records import RecordWriter

    with RecordWriter(subs["in"]) as w:
        w.write([0], [[1.0]])
        RecordWriter(subs["in"])


def other_process_writer(d: Path, subs: dict[str, str]) -> None:
    from refinedlr.records import RecordWriter

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            with RecordWriter(subs["in"]) as rec:
                rec.write([0], [[1.0]])
                os.write(w, b"x")
                time.sleep(30)
        finally:
            os._exit(0)
    os.read(r, 1)
    try:
        RecordWriter(subs["in"])
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def deleted_mid_run(what: str) -> Callable[[Path, dict[str, str]], Any]:
    def call(d: Path, subs: dict[str, str]) -> Any:
        import shutil

        from refinedlr.records import RecordWriter

        p = Path(subs["in"])
        with RecordWriter(p) as w:
            w.write([0], [[1.0]])
            if what == "dir":
                shutil.rmtree(p.parent)
            elif what == "file":
                p.unlink()
            else:
                p.unlink()
                p.write_text("step,l2\n")
            w.write([1], [[2.0]])

    return call


def kill_nine_loses_nothing_written(d: Path, subs: dict[str, str]) -> Any:
    from refinedlr import read_record
    from refinedlr.records import RecordWriter

    pid = os.fork()
    if pid == 0:
        with RecordWriter(subs["in"]) as w:
            for step in range(0, 1000, 10):
                w.write(range(step, step + 10), np.full((10, 1), 1.0 + step))
            os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    return read_record(subs["in"])


def efbig(d: Path, subs: dict[str, str]) -> None:
    from refinedlr.records import RecordWriter

    with RecordWriter(subs["in"]) as w:
        for step in range(1000):
            w.write([step], [[1.0 + step]])


def resume(start_step: int, steps: Any, rows: Any) -> Callable[[Path, dict[str, str]], Any]:
    def call(d: Path, subs: dict[str, str]) -> Any:
        from refinedlr.records import RecordWriter

        with RecordWriter(subs["in"], start_step=start_step) as w:
            w.write(steps, rows)

    return call


def after_close(d: Path, subs: dict[str, str]) -> None:
    from refinedlr.records import RecordWriter

    w = RecordWriter(subs["in"])
    w.close()
    w.write([0], [[1.0]])


def file_is(expected: str) -> Callable[..., None]:
    def check(d: Path, subs: dict[str, str], result: dict[str, Any]) -> None:
        text = Path(subs["in"]).read_text()
        assert text == expected, text

    return check


def well_formed_after(d: Path, subs: dict[str, str], result: dict[str, Any]) -> None:
    from refinedlr import read_record

    text = Path(subs["in"]).read_text()
    assert text.endswith("\n")
    rec = read_record(subs["in"])
    assert rec.values["l2"].tolist() == [1.0 + s for s in range(len(rec))]


WRITER: list[Case] = [
    *[
        Case(f"writer-kind-{name}", new_record, api=writer(kinds=(kind,)))
        for name, kind in [
            ("newline", "l2\n5"), ("empty", ""), ("space", " l2"), ("comma", "a,b"), ("quote", 'q"'),
            ("inner-space", "a b"), ("step", "step"), ("global-step", "Global_Step"),
            ("epoch", "epoch"), ("long", "x" * 101), ("accent", "é"), ("int", 3), ("none", None),
            ("nul", "l2\x00"), ("cr", "l2\r"), ("tab", "a\tb"),
        ]
    ],
    Case("writer-kinds-string", new_record, api=writer(kinds="l2")),
    Case("writer-kinds-empty", new_record, api=writer(kinds=())),
    Case("writer-kinds-duplicate", new_record, api=writer(kinds=("l2", "l2"))),
    Case("writer-start-step-negative", new_record, api=writer(start_step=-1)),
    Case("writer-start-step-text", new_record, api=writer(start_step="0")),
    Case("writer-second-same-process", new_record, api=second_writer),
    Case("writer-second-other-process", new_record, api=other_process_writer),
    Case("writer-file-deleted", new_record, api=deleted_mid_run("file")),
    Case("writer-dir-deleted", new_record, api=deleted_mid_run("dir")),
    Case("writer-file-replaced", new_record, api=deleted_mid_run("replaced")),
    Case("writer-fifo", with_fifo("r.csv"), api=writer()),
    Case("writer-dev-null", lambda d: {"in": "/dev/null"}, api=writer()),
    Case("writer-directory", nothing, api=writer()),
    Case("writer-under-a-file", put("f", "x", ), api=lambda d, s: writer()(d, {"in": s["in"] + "/r.csv"}), names="{in}"),
    Case("writer-other-header", put("r.csv", "step,l1\n0,1\n"), api=writer()),
    Case("writer-binary-existing", put("r.csv", bytes(range(256)) * 10), api=writer()),
    Case("writer-bad-step-existing", put("r.csv", "step,l2\n0,1\nx,2\n"), api=writer()),
    Case("writer-steps-go-back", new_record, api=writes([0], [[2.0]])),
    Case("writer-steps-2e64", new_record, api=writes([2**64], [[2.0]])),
    Case("writer-steps-2-d", new_record, api=writes([[1, 2]], [[2.0, 3.0]])),
    Case("writer-rows-miscounted", new_record, api=writes([1, 2], [1.0, 2.0, 3.0])),
    Case("writer-rows-text", new_record, api=writes([1], [["a"]])),
    Case("writer-after-close", new_record, api=after_close),
    Case("writer-file-size-limit", new_record, api=efbig, fsize=300, check=well_formed_after),
    Case("writer-ok-nan-inf", new_record, api=writes([1, 2, 3], [[float("nan")], [float("inf")], [2.5]]),
         expect="accepted", check=file_is("step,l2\n0,1\n1,nan\n2,nan\n3,2.5\n")),
    Case("writer-ok-resume-cut-line", put("r.csv", "step,l2\n0,1\n1,2\n2,1."), api=writes([2, 3], [[3.0], [4.0]], first=False),
         expect="accepted", check=file_is("step,l2\n0,1\n1,2\n2,3\n3,4\n")),
    Case("writer-ok-resume-start-step", put("r.csv", "step,l2\n0,1\n1,2\n2,3\n"), api=resume(1, [1, 2], [[5.0], [6.0]]),
         expect="accepted", check=file_is("step,l2\n0,1\n1,5\n2,6\n")),
    Case("writer-ok-kill-9", new_record, api=kill_nine_loses_nothing_written, expect="accepted", check=record_of(1000)),
]  # fmt: skip


# -- the PyTorch recorder (its writer is RecordWriter) --------------------------------------------------


def train(path: str, steps: int = 5, flush_every: int = 2, second: str | None = None) -> Any:
    import torch

    from refinedlr.pytorch import GradNormRecorder

    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = GradNormRecorder(path, flush_every=flush_every, close_at_exit=False)
    rec.attach(opt)
    other = None
    if second is not None:
        other = GradNormRecorder(second, flush_every=flush_every, close_at_exit=False)
        other.attach(opt)
    try:
        for _ in range(steps):
            opt.zero_grad()
            model(torch.ones(4, 3)).sum().backward()
            opt.step()
        rec.flush()
        if other is not None:
            other.flush()
    finally:
        rec.close()
        if other is not None:
            other.close()
    return rec.to_record("file")


def recorder_deleted(d: Path, subs: dict[str, str]) -> Any:
    import shutil

    import torch

    from refinedlr.pytorch import GradNormRecorder

    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = GradNormRecorder(subs["in"], flush_every=2, close_at_exit=False)
    rec.attach(opt)
    for step in range(6):
        if step == 3:
            shutil.rmtree(Path(subs["in"]).parent)
        opt.zero_grad()
        model(torch.ones(4, 3)).sum().backward()
        opt.step()
    rec.close()


def recorder_killed(sig: int, flush_every: int) -> Callable[[Path, dict[str, str]], Any]:
    def call(d: Path, subs: dict[str, str]) -> Any:
        from refinedlr import read_record

        pid = os.fork()
        if pid == 0:
            import torch

            from refinedlr.pytorch import GradNormRecorder

            model = torch.nn.Linear(3, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            rec = GradNormRecorder(subs["in"], flush_every=flush_every)
            rec.attach(opt)
            for _ in range(23):
                opt.zero_grad()
                model(torch.ones(4, 3)).sum().backward()
                opt.step()
            os.kill(os.getpid(), sig)
            time.sleep(5)
            os._exit(0)
        os.waitpid(pid, 0)
        return read_record(subs["in"])

    return call


RECORDER: list[Case] = [
    Case("recorder-two-on-one-path", new_record, api=lambda d, s: train(s["in"], second=s["in"]), needs=TORCH),
    Case("recorder-fifo", with_fifo("r.csv"), api=lambda d, s: train(s["in"]), needs=TORCH),
    Case("recorder-dev-null", lambda d: {"in": "/dev/null"}, api=lambda d, s: train(s["in"]), needs=TORCH),
    Case("recorder-run-dir-deleted", new_record, api=recorder_deleted, needs=TORCH),
    Case("recorder-other-header", put("r.csv", "step,l1,l2\n0,1,2\n"), api=lambda d, s: train(s["in"]), needs=TORCH),
    Case("recorder-file-size-limit", new_record, api=lambda d, s: train(s["in"], steps=200, flush_every=10), fsize=400, needs=TORCH),
    Case("recorder-ok", new_record, api=lambda d, s: train(s["in"]), expect="accepted", check=record_of(5), needs=TORCH),
    Case("recorder-ok-sigkill", new_record, api=recorder_killed(signal.SIGKILL, 5), expect="accepted", check=record_of(20), needs=TORCH),
    Case("recorder-ok-sigterm", new_record, api=recorder_killed(signal.SIGTERM, 5), expect="accepted", check=record_of(23), needs=TORCH),
]  # fmt: skip


for _c in [*WRITER, *RECORDER]:
    _c.may_write = not _c.id.startswith(("writer-kind", "writer-start-step"))

# -- refinedlr plan (issue 17): the command line and the library ---------------------------------

P = ("plan", "--lr", "0.1", "--from", "linear", "--steps", "400")


def planned(call: str, *args: Any, **kw: Any) -> Callable[[Path, dict[str, str]], Any]:
    """A call of refinedlr.plan; ``"{in}"`` among the arguments is the case's input file."""

    def run(d: Path, subs: dict[str, str]) -> Any:
        from refinedlr import plan

        given = [subs["in"] if a == "{in}" else a for a in args]
        named = {k: subs["in"] if v == "{in}" else v for k, v in kw.items()}
        return getattr(plan, call)(*given, **named)

    return run


PLAN_CLI: list[Case] = [
    Case(
        "plan-from-nested-json",
        put("s.json", '{"spec": ' + DEEP + "}"),
        ("plan", "--lr", "0.1", "--from", "{in}", "--to", "cosine"),
    ),
    Case("plan-to-nested-json", put("s.json", '{"spec": ' + DEEP + "}"), (*P, "--to", "{in}")),
    Case(
        "plan-from-5000-digits",
        put("s.json", '{"spec": {"name": "linear", "total_steps": ' + "9" * 5000 + "}}"),
        ("plan", "--lr", "0.1", "--from", "{in}", "--to", "cosine"),
    ),
    Case(
        "plan-from-fifo",
        with_fifo("s.json"),
        ("plan", "--lr", "0.1", "--from", "{in}", "--to", "cosine"),
    ),
    Case(
        "plan-from-dev-zero",
        lambda d: {"in": "/dev/zero"},
        ("plan", "--lr", "0.1", "--from", "{in}", "--to", "cosine"),
    ),
    Case(
        "plan-from-npy-pickle",
        put("s.npy", pickle.dumps([1.0, 2.0])),
        ("plan", "--lr", "0.1", "--from", "{in}", "--to", "cosine"),
    ),
    Case(
        "plan-from-zeros",
        put("z.npy", npy_bytes(np.zeros(50))),
        ("plan", "--lr", "0.1", "--from", "{in}", "--to", "cosine"),
    ),
    Case("plan-to-zeros", put("z.npy", npy_bytes(np.zeros(50))), (*P, "--to", "{in}")),
    Case(
        "plan-from-lying-npy",
        put("s.npy", lying_npy((10**12,))),
        ("plan", "--lr", "0.1", "--from", "{in}", "--to", "cosine"),
    ),
    Case(
        "plan-norms-gzip-bomb",
        put("n.csv.gz", gz_stream(b"1\n" * 500_000, 45)),
        (*P, "--to", "cosine", "--norms", "{in}"),
    ),
    Case(
        "plan-norms-nested-jsonl",
        put("log.jsonl", jsonl(FLAT[:5]) + '{"a": ' + DEEP + "}\n"),
        (*P, "--to", "cosine", "--norms", "{in}"),
    ),
    Case(
        "plan-norms-text-column",
        put(
            "n.csv", "step,loss,grad_norm\n" + "".join(f"{i},{v},abc\n" for i, v in enumerate(FLAT))
        ),
        (*P, "--to", "cosine", "--norms", "{in}"),
    ),
    Case(
        "plan-norms-other-horizon",
        put("n.csv", csv_text(FLAT[:300])),
        (*P, "--to", "cosine", "--norms", "{in}"),
    ),
    Case(
        "plan-norms-unknown-kind",
        flat(),
        (*P, "--to", "cosine", "--norms", "{in}", "--kind", "l7"),
        names="l7",
    ),
    Case("plan-norms-fifo", with_fifo("n.csv"), (*P, "--to", "cosine", "--norms", "{in}")),
    Case(
        "plan-losses-other-horizon",
        put("n.csv", csv_text(FLAT[:300], header="step,loss")),
        (*P, "--to", "cosine", "--losses", "{in}"),
        names="300",
    ),
    Case("plan-losses-no-column", flat(), (*P, "--to", "cosine", "--losses", "{in}")),
    Case(
        "plan-losses-rise",
        put("n.csv", csv_text([1.0 + i / 400 for i in range(400)], header="step,loss")),
        (*P, "--to", "cosine", "--losses", "{in}"),
        expect="warned",
        warns="do not fall",
    ),
    Case(
        "plan-lr-zero",
        nothing,
        ("plan", "--lr", "0", "--from", "linear", "--steps", "10", "--to", "cosine"),
        names="--lr",
    ),
    Case(
        "plan-lr-nan",
        nothing,
        ("plan", "--lr", "nan", "--from", "linear", "--steps", "10", "--to", "cosine"),
        names="--lr",
    ),
    Case(
        "plan-lr-1e400",
        nothing,
        ("plan", "--lr", "1e400", "--from", "linear", "--steps", "10", "--to", "cosine"),
        names="--lr",
    ),
    Case(
        "plan-lr-text",
        nothing,
        ("plan", "--lr", "fast", "--from", "linear", "--steps", "10", "--to", "cosine"),
        names="--lr",
    ),
    Case(
        "plan-steps-1e13",
        nothing,
        ("plan", "--lr", "0.1", "--from", "linear", "--steps", "10000000000000", "--to", "cosine"),
        names="10,000,000,000,000",
    ),
    Case(
        "plan-steps-5000-digits",
        nothing,
        ("plan", "--lr", "0.1", "--from", "linear", "--steps", "9" * 5000, "--to", "cosine"),
        names="--steps",
    ),
    Case(
        "plan-to-steps-1e13",
        nothing,
        (*P, "--at", "200", "--to-steps", "10000000000000"),
        names="10,000,000,000,000",
    ),
    Case(
        "plan-at-past-end", nothing, (*P, "--at", "500", "--to-steps", "800"), names="at_step=500"
    ),
    Case(
        "plan-at-at-horizon", nothing, (*P, "--at", "400", "--to-steps", "400"), names="at_step=400"
    ),
    Case(
        "plan-at-zero-lr",
        put("s.npy", npy_bytes(np.array([1.0, 0.5, 0.0, 0.0]))),
        ("plan", "--lr", "0.1", "--from", "{in}", "--at", "4", "--to-steps", "8"),
    ),
    Case("plan-to-at-text", nothing, (*P, "--to", "cosine@many"), names="cosine@many"),
    Case("plan-to-at-zero", nothing, (*P, "--to", "cosine@0"), names="cosine@0"),
    Case("plan-to-bad-argument", nothing, (*P, "--to", "cosine:floor=2"), names="floor"),
    Case("plan-to-deep-value", nothing, (*P, "--to", "cosine:floor=" + "[" * 50_000), names="--to"),
    Case("plan-to-long-number", nothing, (*P, "--to", "cosine:floor=" + "9" * 5000), names="--to"),
    Case("plan-to-huge-name", nothing, (*P, "--to", "x" * 100_000), names="--to"),
    Case("plan-to-unknown-name", nothing, (*P, "--to", "cosin"), names="cosin"),
    Case(
        "plan-to-and-at",
        nothing,
        (*P, "--to", "cosine", "--at", "100", "--to-steps", "800"),
        names="--at",
    ),
    Case(
        "plan-output-read-only",
        lambda d: (
            d.joinpath("o.json").write_text("keep\n"),
            d.joinpath("o.json").chmod(0o400),
            {"in": str(d / "o.json")},
        )[-1],
        (*P, "--to", "cosine", "-o", "{in}"),
    ),
    Case("plan-output-under-file", put("f.txt", "x"), (*P, "--to", "cosine", "-o", "{in}/o.json")),
    Case(
        "plan-output-is-norms",
        flat(),
        (*P, "--to", "cosine", "--norms", "{in}", "-o", "{in}"),
        names="{in}",
    ),
    Case(
        "plan-full-disk-plot",
        nothing,
        (*P, "--to", "cosine", "-o", "{dir}/o.json", "--plot", "{dir}/f.png"),
        names="{dir}",
        fsize=100,
        needs=MPL,
    ),
    Case(
        "plan-ok-transfer",
        nothing,
        (
            *P,
            "--to",
            "wsd:decay=0.2,decay_shape=1-sqrt",
            "--to-steps",
            "1600",
            "-o",
            "{dir}/o.json",
        ),
        expect="accepted",
        check=lambda d, s, r: schedule_written(steps=1600, last_zero=False)(
            d, {"out": s["dir"] + "/o.json"}, r
        ),
    ),
    Case(
        "plan-ok-extend-mathtext",
        nothing,
        (
            "plan",
            "--lr",
            "0.1",
            "--from",
            "wsd:decay=0.2",
            "--steps",
            "400",
            "--at",
            "320",
            "--to-steps",
            "800",
            "-o",
            "{dir}/o.json",
            "--plot",
            "{dir}/$x^$.png",
        ),
        expect="accepted",
        check=lambda d, s, r: files_exist("o", "f")(
            d, {"o": s["dir"] + "/o.json", "f": s["dir"] + "/$x^$.png"}, r
        ),
        needs=MPL,
    ),
    Case(
        "plan-ok-norms-sparse",
        put("n.csv", "step,l2\n0,5\n399,1\n"),
        (*P, "--to", "cosine", "--norms", "{in}"),
        expect="accepted",
        check=stdout_has("cosine"),
    ),
]

PLAN_API: list[Case] = [
    Case(
        "api-plan-transfer-nested",
        put("s.json", '{"spec": ' + DEEP + "}"),
        api=planned("transfer_lr", 0.1, "{in}", "{in}"),
    ),
    Case(
        "api-plan-transfer-fifo",
        with_fifo("s.json"),
        api=planned("transfer_lr", 0.1, "{in}", "{in}"),
    ),
    Case(
        "api-plan-transfer-lr-inf",
        nothing,
        api=planned(
            "transfer_lr",
            float("inf"),
            {"name": "linear", "total_steps": 9},
            {"name": "cosine", "total_steps": 9},
        ),
    ),
    Case(
        "api-plan-transfer-norms-object",
        nothing,
        api=planned(
            "transfer_lr",
            0.1,
            {"name": "linear", "total_steps": 3},
            {"name": "cosine", "total_steps": 3},
            norms=[object()] * 3,
        ),
    ),
    Case(
        "api-plan-transfer-norms-2d",
        nothing,
        api=planned(
            "transfer_lr",
            0.1,
            {"name": "linear", "total_steps": 3},
            {"name": "cosine", "total_steps": 3},
            norms=[[1.0, 2.0, 3.0]],
        ),
    ),
    Case(
        "api-plan-transfer-norms-inf",
        nothing,
        api=planned(
            "transfer_lr",
            0.1,
            {"name": "linear", "total_steps": 3},
            {"name": "cosine", "total_steps": 3},
            norms=[float("inf")] * 3,
        ),
    ),
    Case(
        "api-plan-transfer-spec-huge",
        nothing,
        api=planned(
            "transfer_lr",
            0.1,
            {"name": "linear", "total_steps": 10**13},
            {"name": "cosine", "total_steps": 9},
        ),
    ),
    Case(
        "api-plan-extend-huge",
        nothing,
        api=planned("extend", {"name": "linear", "total_steps": 9}, at_step=5, total_steps=10**13),
    ),
    Case(
        "api-plan-extend-float-step",
        nothing,
        api=planned("extend", {"name": "linear", "total_steps": 9}, at_step=5.5, total_steps=20),
    ),
    Case(
        "api-plan-extend-bool-step",
        nothing,
        api=planned("extend", {"name": "linear", "total_steps": 9}, at_step=True, total_steps=20),
    ),
    Case(
        "api-plan-extend-family",
        nothing,
        api=planned(
            "extend",
            {"name": "linear", "total_steps": 9},
            at_step=5,
            total_steps=20,
            family="restart",
        ),
    ),
    Case(
        "api-plan-extend-nested-spec",
        nothing,
        api=planned(
            "extend",
            {"name": "continuation", "total_steps": 9, "base": {"name": "continuation"}},
            at_step=5,
            total_steps=20,
        ),
    ),
    Case(
        "api-plan-predict-points",
        nothing,
        api=planned(
            "predict",
            0.1,
            {"name": "linear", "total_steps": 9},
            [{"name": "cosine", "total_steps": 9}],
            points=10**12,
        ),
    ),
    Case(
        "api-plan-predict-losses-text",
        nothing,
        api=planned(
            "predict",
            0.1,
            {"name": "linear", "total_steps": 3},
            [{"name": "cosine", "total_steps": 3}],
            losses=["a", "b", "c"],
        ),
    ),
    Case(
        "api-plan-continuation-deep-spec",
        nothing,
        api=lambda d, s: __import__("refinedlr").schedule_from_spec(_deep_continuation(2_000)),
    ),
]

#: What the error of each library call must name (the library's errors name no file here).
_PLAN_EXPECT = {
    "plan-steps-1e13": ("refused", "MAX_STEPS"),
    "plan-to-steps-1e13": ("refused", "MAX_STEPS"),
    "plan-to-huge-name": ("refused", "unknown schedule name"),
    "api-plan-transfer-lr-inf": ("refused", "lr must be"),
    "api-plan-transfer-norms-object": ("refused", "norms"),
    "api-plan-transfer-norms-2d": ("refused", "norms"),
    "api-plan-transfer-norms-inf": ("refused", "norms"),
    "api-plan-transfer-spec-huge": ("refused", "MAX_STEPS"),
    "api-plan-extend-huge": ("refused", "MAX_STEPS"),
    "api-plan-extend-float-step": ("refused", "at_step"),
    "api-plan-extend-bool-step": ("refused", "at_step"),
    "api-plan-extend-family": ("refused", "restart"),
    "api-plan-extend-nested-spec": ("refused", "total_steps"),
    "api-plan-predict-points": ("accepted", "{in}"),
    "api-plan-predict-losses-text": ("refused", "losses"),
    "api-plan-continuation-deep-spec": ("refused", "nested"),
}


def _deep_continuation(depth: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "linear", "total_steps": 10}
    for i in range(depth):
        spec = {"name": "continuation", "total_steps": 12 + i, "base": spec, "at_step": 10 + i}
    return spec


for _c in [*PLAN_CLI, *PLAN_API]:
    _c.expect, _c.names = _PLAN_EXPECT.get(_c.id, (_c.expect, _c.names))

CASES: list[Case] = [
    *_from_test_hostile_inputs(),
    *CLI,
    *API,
    *WRITER,
    *RECORDER,
    *PLAN_CLI,
    *PLAN_API,
]
assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
