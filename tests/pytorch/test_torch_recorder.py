"""GradNormRecorder in one process: values against torch's own norms, hooks, clipping, AMP,
accumulation, flushing, memory mode, checkpoints, SIGTERM (the CUDA path: test_torch_cuda.py)."""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from refinedlr import RecordError, read_record  # noqa: E402
from refinedlr.pytorch import GradNormRecorder, grad_norms  # noqa: E402


def model_and_opt(seed: int = 0, lr: float = 0.05):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2))
    return model, torch.optim.SGD(model.parameters(), lr=lr)


def data(step: int, micro: int = 0):
    g = torch.Generator().manual_seed(100 * step + micro)
    return torch.randn(8, 5, generator=g), torch.randn(8, 2, generator=g)


def loss_of(model, step: int, micro: int = 0):
    x, y = data(step, micro)
    return torch.nn.functional.mse_loss(model(x), y)


def torch_norms(params) -> list[float]:
    grads = [p.grad for p in params if p.grad is not None]
    return [torch.nn.utils.get_total_norm(grads, o).item() for o in (2.0, 1.0)]


# ---------------------------------------------------------------------------------------------
# values


def test_grad_norms_match_torch_mixed_dtypes_and_missing_grads() -> None:
    torch.manual_seed(1)
    ps = [
        torch.nn.Parameter(torch.zeros(30, 20)),
        torch.nn.Parameter(torch.zeros(7, dtype=torch.float64)),
        torch.nn.Parameter(torch.zeros(11, 3, dtype=torch.bfloat16)),
        torch.nn.Parameter(torch.zeros(4)),  # no gradient: skipped
    ]
    for p in ps[:3]:
        p.grad = torch.randn(p.shape).to(p.dtype)
    got = grad_norms(ps, ("l2", "l1"))
    assert got.dtype == torch.float64
    # reference by hand, in float64
    flat = torch.cat([p.grad.double().reshape(-1) for p in ps[:3]])
    np.testing.assert_allclose(
        got.numpy(), [flat.norm().item(), flat.abs().sum().item()], rtol=1e-6
    )
    assert grad_norms([ps[3]]).tolist() == [0.0]  # no gradients at all


def test_hook_records_once_per_step_values_match_torch(tmp_path: Path) -> None:
    model, opt = model_and_opt()
    rec = GradNormRecorder(tmp_path / "n.csv", kinds=("l2", "l1"), flush_every=4)
    rec.attach(opt)
    ref = []
    for step in range(10):
        opt.zero_grad()
        loss_of(model, step).backward()
        ref.append(torch_norms(model.parameters()))
        opt.step()
    assert rec.step == 10
    rec.close()
    record = read_record(tmp_path / "n.csv")
    assert record.steps.tolist() == list(range(10))
    np.testing.assert_allclose(np.c_[record.values["l2"], record.values["l1"]], ref, rtol=1e-6)
    assert record.kinds == ("l2", "l1")


def test_gradient_accumulation_one_row_per_optimizer_step() -> None:
    model, opt = model_and_opt()
    rec = GradNormRecorder(kinds=("l2",))
    rec.attach(opt)
    ref = []
    for step in range(6):
        opt.zero_grad()
        for micro in range(4):
            (loss_of(model, step, micro) / 4).backward()
        ref.append(torch_norms(model.parameters())[0])  # norm of the accumulated gradient
        opt.step()
    record = rec.to_record()
    assert record.steps.tolist() == list(range(6))
    np.testing.assert_allclose(record.values["l2"], ref, rtol=1e-7)


def test_clip_grad_norm_records_pre_clip_clips_like_torch_no_double_record() -> None:
    model, opt = model_and_opt()
    twin, _ = model_and_opt()
    rec = GradNormRecorder(kinds=("l2", "l1"))
    rec.attach(opt)  # must not record the clipped step again
    for step in range(5):
        opt.zero_grad()
        twin.zero_grad()
        loss_of(model, step).backward()
        loss_of(twin, step).backward()
        l1 = torch_norms(twin.parameters())[1]
        expected = torch.nn.utils.clip_grad_norm_(twin.parameters(), max_norm=0.3)
        got = rec.clip_grad_norm_(model.parameters(), max_norm=0.3)
        assert torch.equal(got, expected)  # same norm, same dtype
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            assert torch.equal(p.grad, q.grad)  # clipped identically
        opt.step()
        with torch.no_grad():
            for p, q in zip(model.parameters(), twin.parameters(), strict=True):
                q.copy_(p)
        assert rec.step == step + 1
        record = rec.to_record()
        assert record.values["l2"][-1] == pytest.approx(expected.item(), rel=1e-7)
        assert record.values["l1"][-1] == pytest.approx(l1, rel=1e-6)
    assert len(rec.to_record()) == 5


def test_post_clip_mode_records_norm_after_clipping() -> None:
    model, opt = model_and_opt()
    rec = GradNormRecorder(kinds=("l2", "l1"), when="post_clip")
    for step in range(4):
        opt.zero_grad()
        loss_of(model, step).backward()
        pre = rec.clip_grad_norm_(model.parameters(), max_norm=0.2)
        after = torch_norms(model.parameters())  # measured on the clipped gradients
        opt.step()
        record = rec.to_record()
        np.testing.assert_allclose(
            [record.values["l2"][-1], record.values["l1"][-1]], after, rtol=1e-5
        )
        if pre.item() > 0.2:
            assert record.values["l2"][-1] == pytest.approx(0.2, rel=1e-5)


def test_clip_with_other_norm_types() -> None:
    model, _ = model_and_opt()
    twin, _ = model_and_opt()
    loss_of(model, 0).backward()
    loss_of(twin, 0).backward()
    rec = GradNormRecorder(kinds=("l2",))
    for nt in (1.0, math.inf):
        got = rec.clip_grad_norm_(model.parameters(), 0.1, norm_type=nt)
        exp = torch.nn.utils.clip_grad_norm_(twin.parameters(), 0.1, norm_type=nt)
        torch.testing.assert_close(got, exp)
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad)
    with pytest.raises(RuntimeError, match="non-finite"):
        next(model.parameters()).grad[0, 0] = math.nan
        rec.clip_grad_norm_(model.parameters(), 0.1, error_if_nonfinite=True)


def test_explicit_record_and_record_norms() -> None:
    model, opt = model_and_opt()
    rec = GradNormRecorder(kinds=("l1",))
    loss_of(model, 0).backward()
    vals = rec.record(model)  # a module; returns the device tensor
    assert vals.shape == (1,)
    rec.record(opt)  # an optimizer
    rec.record(list(model.parameters()))
    rec.record_norms(2.0)
    rec.record_norms(torch.tensor([float("nan")]))
    ref = torch_norms(model.parameters())[1]
    v = rec.to_record().values["l1"]
    np.testing.assert_allclose(v[:3], ref, rtol=1e-7)
    assert v[3] == 2.0 and np.isnan(v[4])
    with pytest.raises(ValueError, match="values for kinds"):
        rec.record_norms([1.0, 2.0])
    with pytest.raises(TypeError, match="attached optimizer"):
        rec.record()


def test_amp_skipped_step_is_nan_and_still_one_row() -> None:
    """GradScaler (CPU): unscale_, then recorder.clip_grad_norm_; an overflow step -> NaN row."""
    model, opt = model_and_opt()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    rec = GradNormRecorder(kinds=("l2", "l1"))
    rec.attach(opt)
    ref, skipped = [], []
    for step in range(6):
        opt.zero_grad()
        loss = loss_of(model, step)
        if step == 2:
            loss = loss * math.inf  # overflow: the scaler skips this step
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        ref.append(torch_norms(model.parameters()))
        before = [p.detach().clone() for p in model.parameters()]
        rec.clip_grad_norm_(model.parameters(), max_norm=1.0)
        scaler.step(opt)
        scaler.update()
        skipped.append(
            all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
        )
    assert skipped == [False, False, True, False, False, False]
    record = rec.to_record()
    assert record.steps.tolist() == list(range(6))
    for j, kind in enumerate(("l2", "l1")):
        v = record.values[kind]
        assert np.isnan(v[2])
        np.testing.assert_allclose(np.delete(v, 2), np.delete(np.array(ref)[:, j], 2), rtol=1e-6)


def _amp_loop(
    rec: GradNormRecorder, model, opt, scaler, steps: int, skip: set[int], explicit=False
):
    """An AMP training loop; the steps in ``skip`` overflow (the scaler skips them). Returns the
    unscaled norms [l2, l1] of every iteration (NaN rows where skipped)."""
    ref = []
    for step in range(steps):
        opt.zero_grad()
        loss = loss_of(model, step)
        if step in skip:
            loss = loss * math.inf
        scaler.scale(loss).backward()
        scaler.unscale_(opt)  # (the recorder's hook sees unscaled gradients)
        ref.append([math.nan] * 2 if step in skip else torch_norms(model.parameters()))
        if explicit:
            rec.record(opt)
        scaler.step(opt)
        scaler.update()
    return np.array(ref)


def test_amp_hook_with_scaler_keeps_rows_aligned() -> None:
    """Issue 11 §5: with the hook alone a skipped step used to shift every later row by one;
    attach(opt, scaler=scaler) records it as NaN, so row t is iteration t."""
    model, opt = model_and_opt()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    rec = GradNormRecorder(kinds=("l2", "l1"), flush_every=3)
    rec.attach(opt, scaler=scaler)
    skip = {0, 3, 4, 8}  # the first step, two in a row, the last
    ref = _amp_loop(rec, model, opt, scaler, 9, skip)
    r = rec.to_record()
    assert r.steps.tolist() == list(range(9))
    got = np.c_[r.values["l2"], r.values["l1"]]
    assert np.isnan(got[sorted(skip)]).all()
    np.testing.assert_allclose(got, ref, rtol=1e-6)  # NaN where NaN, equal elsewhere
    assert scaler.get_scale() == 2.0**10 * 0.5 ** len(skip)  # the scaler really skipped them
    # explicit recording with the hook and the scaler attached: still one row per iteration
    model, opt = model_and_opt()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    rec = GradNormRecorder(kinds=("l2", "l1"))
    rec.attach(opt, scaler=scaler)
    ref = _amp_loop(rec, model, opt, scaler, 6, {2}, explicit=True)
    r = rec.to_record()
    assert r.steps.tolist() == list(range(6))
    np.testing.assert_allclose(np.c_[r.values["l2"], r.values["l1"]], ref, rtol=1e-6)
    rec.detach()  # the scaler's own update() again
    assert "update" not in vars(scaler)


def test_amp_hook_without_scaler_is_refused() -> None:
    model, opt = model_and_opt()
    scaler = torch.amp.GradScaler("cpu")
    rec = GradNormRecorder()
    rec.attach(opt)
    with pytest.raises(RuntimeError, match=r"attach\(optimizer, scaler=scaler\)"):
        _amp_loop(rec, model, opt, scaler, 2, set())
    # without a scaler the hook is fine
    model, opt = model_and_opt()
    rec = GradNormRecorder()
    rec.attach(opt)
    loss_of(model, 0).backward()
    opt.step()
    assert rec.step == 1


def test_non_finite_norms_are_written_as_nan(tmp_path: Path) -> None:
    rec = GradNormRecorder(tmp_path / "n.csv", kinds=("l2", "l1"))
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.tensor([1.0, math.inf, 0.0])
    rec.record([p])
    p.grad = torch.tensor([1.0, math.nan, 0.0])
    rec.record([p])
    rec.close()
    text = (tmp_path / "n.csv").read_text().splitlines()
    assert text == ["step,l2,l1", "0,nan,nan", "1,nan,nan"]


# ---------------------------------------------------------------------------------------------
# buffering, files, memory


def test_rows_reach_the_file_every_flush_every_steps(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    model, opt = model_and_opt()
    rec = GradNormRecorder(path, flush_every=5)
    rec.attach(opt)
    for step in range(13):
        opt.zero_grad()
        loss_of(model, step).backward()
        opt.step()
        rows = len(read_record(path)) if path.exists() else 0
        assert rows == (step + 1) // 5 * 5
    rec.flush()
    assert len(read_record(path)) == 13
    rec.close()
    rec.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        rec.record(model)


def test_memory_only_and_to_record_sources(tmp_path: Path) -> None:
    rec = GradNormRecorder(kinds=("l2", "l1"), flush_every=3)
    assert len(rec.to_record()) == 0
    for v in range(7):
        rec.record_norms([float(v), 2.0 * v])
    r = rec.to_record()
    assert r.steps.tolist() == list(range(7)) and r.source == "<memory>"
    np.testing.assert_array_equal(r.values["l1"], 2.0 * np.arange(7))
    with pytest.raises(RecordError, match="no file"):
        rec.to_record(source="file")
    on_disk = GradNormRecorder(tmp_path / "x.csv", keep_in_memory=False)
    on_disk.record_norms(1.5)
    assert on_disk.to_record().values["l2"].tolist() == [1.5]
    with pytest.raises(RecordError, match="keeps no values in memory"):
        on_disk.to_record(source="memory")


def test_fresh_run_overwrites_an_old_file(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    with GradNormRecorder(path) as rec:
        for v in range(5):
            rec.record_norms(float(v))
    with GradNormRecorder(path) as rec:
        rec.record_norms(9.0)
    assert read_record(path).values["l2"].tolist() == [9.0]


def test_state_dict_resume_in_process(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    rec = GradNormRecorder(path, flush_every=4)
    for v in range(10):
        rec.record_norms(float(v))
        if v == 5:
            buf = io.BytesIO()
            torch.save(rec.state_dict(), buf)  # flushes: rows 0..5 are on disk
            assert len(read_record(path)) == 6
    rec.close()
    assert len(read_record(path)) == 10
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert state == {"version": 1, "step": 6, "kinds": ["l2"]}
    rec2 = GradNormRecorder(path, flush_every=4)
    rec2.load_state_dict(state)
    # one process (no process group, no RANK): the later rows are dropped when it first writes
    assert rec2.step == 6
    for v in range(6, 12):
        rec2.record_norms(100.0 + v)
        if v == 9:  # the first flush: rows 0..5 kept, 6..9 new, the old 6..9 gone
            assert read_record(path).values["l2"].tolist() == [*range(6), 106, 107, 108, 109]
    rec2.close()
    r = read_record(path)
    assert r.steps.tolist() == list(range(12))
    assert r.values["l2"].tolist() == [*range(6), *(100.0 + np.arange(6, 12))]
    with pytest.raises(RecordError, match="kinds"):
        GradNormRecorder(path, kinds=("l1",)).load_state_dict(state)
    late = GradNormRecorder(tmp_path / "late.csv")
    late.record_norms(1.0)
    with pytest.raises(RuntimeError, match="before this recorder records"):
        late.load_state_dict(state)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="kinds"):
        GradNormRecorder(kinds=("l3",))
    with pytest.raises(ValueError, match="kinds"):
        GradNormRecorder(kinds=())
    with pytest.raises(ValueError, match="flush_every"):
        GradNormRecorder(flush_every=0)
    with pytest.raises(ValueError, match="when"):
        GradNormRecorder(when="later")
    assert GradNormRecorder(kinds="l1").kinds == ("l1",)


# ---------------------------------------------------------------------------------------------
# SIGTERM


def _rows(path: Path) -> int:
    """Rows in a record another process may be writing (a file just created is empty)."""
    try:
        return len(read_record(path)) if path.exists() else 0
    except RecordError as exc:
        if "empty file" in str(exc):
            return 0
        raise


@pytest.mark.parametrize("mode", ["default", "chained", "ignored", "forked"])
def test_sigterm_flushes_unwritten_rows_and_chains(tmp_path: Path, mode: str) -> None:
    """Issue 11 §5: a real SIGTERM to a real process: the 50 rows held in the recorder's buffer
    reach the file; then the handler installed before runs (the default one: the process dies by
    SIGTERM; a Python one: it runs, here exiting with 3; SIG_IGN: the process lives on). A forked
    child that gets SIGTERM first writes nothing (each row once)."""
    import signal
    import subprocess
    import sys

    path = tmp_path / "n.csv"
    script = Path(__file__).with_name("_sigterm_run.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), mode, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read() if proc.stderr else ""
        assert _rows(path) == 0  # nothing flushed yet
        proc.send_signal(signal.SIGTERM)
        if mode == "ignored":
            deadline = time.monotonic() + 120  # generous: a loaded machine's fsync can take long
            while _rows(path) < 50 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None  # still running: SIGTERM stays ignored
        else:
            proc.wait(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    if mode in ("default", "forked"):
        assert proc.returncode == -signal.SIGTERM
    elif mode == "chained":
        assert proc.returncode == 3
        assert (tmp_path / "n.csv.handler").read_text() == str(int(signal.SIGTERM))
    record = read_record(path)
    assert record.steps.tolist() == list(range(50)) and record.kinds == ("l2", "l1")
    assert np.isfinite(record.values["l2"]).all()


SIGTERM_HANDLER_LIFETIME = """
import signal
from refinedlr.pytorch import GradNormRecorder
before = signal.getsignal(signal.SIGTERM)
a, b = GradNormRecorder(), GradNormRecorder()
ours = signal.getsignal(signal.SIGTERM)
assert ours is not before
a.close()
assert signal.getsignal(signal.SIGTERM) is ours  # b still needs it
b.close()
assert signal.getsignal(signal.SIGTERM) is before
c = GradNormRecorder(close_at_exit=False)
assert signal.getsignal(signal.SIGTERM) is before
print("ok")
"""


def test_sigterm_handler_is_removed_with_the_last_recorder() -> None:
    import subprocess
    import sys

    # a fresh process: other tests' recorders must not be alive
    out = subprocess.run(
        [sys.executable, "-c", SIGTERM_HANDLER_LIFETIME], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# ---------------------------------------------------------------------------------------------
# issue 19: bounded buffers, missing gradients, writer errors surface


def test_flush_every_is_bounded() -> None:
    from refinedlr.pytorch.sink import MAX_FLUSH_EVERY

    for bad in (10**10, MAX_FLUSH_EVERY + 1, 0, -5, 2.5, True):
        with pytest.raises(ValueError, match="flush_every") as e:
            GradNormRecorder(flush_every=bad, close_at_exit=False)
        assert "\n" not in str(e.value)
    rec = GradNormRecorder(flush_every=MAX_FLUSH_EVERY, close_at_exit=False)  # allowed, lazily
    assert rec._buf is None  # nothing is allocated before the first row
    rec.record_norms(1.0)
    assert rec._buf is not None and rec._buf.numel() == MAX_FLUSH_EVERY  # 8 MB for one kind


def test_a_step_without_gradients_is_missing_with_one_warning(tmp_path: Path) -> None:
    """Issue 19: a step where no parameter has a gradient was written as 0, and refine then
    refused the whole record; it is now NaN (missing), with one warning naming the step."""
    from refinedlr import refine

    model, opt = model_and_opt()
    path = tmp_path / "n.csv"
    rec = GradNormRecorder(path, kinds=("l2", "l1"), flush_every=4)
    rec.attach(opt)
    with pytest.warns(RuntimeWarning, match=r"no parameter has a gradient at step 3") as seen:
        for step in range(12):
            opt.zero_grad(set_to_none=True)
            if step not in (3, 7):  # two steps without a backward
                loss_of(model, step).backward()
            opt.step()
            if step == 9:
                rec.clip_grad_norm_([], max_norm=1.0)  # nothing to clip: missing (row 10),
                # and the hook skips step 10, recorded explicitly
    assert sum("no parameter has a gradient" in str(w.message) for w in seen) == 1  # once
    rec.close()
    r = read_record(path)
    assert r.steps.tolist() == list(range(12))
    missing = np.flatnonzero(np.isnan(r.values["l2"])).tolist()
    assert missing == [3, 7, 10] and np.isnan(r.values["l1"][missing]).all()
    assert (r.values["l2"][~np.isnan(r.values["l2"])] > 0).all()  # no zero rows
    with pytest.warns(Warning, match="3 of 12 gradient norms are missing"):
        refine(r, norm="l2")  # the record is usable: missing steps are interpolated


def test_writer_errors_reach_the_training_loop(tmp_path: Path, monkeypatch) -> None:
    """Issue 19: the run directory deleted mid-run must not go unnoticed. Whatever the writer
    raises at a flush (here a simulated 'record file was deleted') reaches the caller of the
    step that flushed, and close(); the rows are kept for a retry, not dropped silently."""
    from refinedlr.records import RecordWriter

    model, opt = model_and_opt()
    rec = GradNormRecorder(tmp_path / "n.csv", flush_every=3)
    rec.attach(opt)
    broken = {"on": False}
    original = RecordWriter.write

    def write(self, steps, rows):
        if broken["on"]:
            raise RecordError("the record file was deleted", path=self.path)
        return original(self, steps, rows)

    monkeypatch.setattr(RecordWriter, "write", write)
    for step in range(3):
        loss_of(model, step).backward()
        opt.step()
    broken["on"] = True
    with pytest.raises(RecordError, match="deleted"):
        for step in range(3, 6):
            loss_of(model, step).backward()
            opt.step()  # the hook's third row starts a flush, which fails
    with pytest.raises(RecordError, match="deleted"):
        rec.close()
    broken["on"] = False


AT_EXIT_ERROR = """
import sys
from refinedlr.pytorch import GradNormRecorder
from refinedlr.records import RecordError, RecordWriter
rec = GradNormRecorder(sys.argv[1], flush_every=100)
for v in range(5):
    rec.record_norms(float(v))
def write(self, steps, rows):
    raise RecordError("the record file was deleted", path=self.path)
RecordWriter.write = write
print("ok")
"""


def test_a_writer_error_at_exit_is_printed_on_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", AT_EXIT_ERROR, str(tmp_path / "n.csv")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "at exit" in lines[0] and "deleted" in lines[0], out.stderr
    assert "Traceback" not in out.stderr
