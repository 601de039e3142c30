"""GradNormRecorder under DDP and FSDP2: 2 real CPU processes with the gloo backend.

Each rank is a separate ``_dist_run.py`` process started here (as torchrun would); the single-process
reference (same model, full batch, torch's own ``get_total_norm`` / ``clip_grad_norm_``) is computed
here. FSDP2 (``fully_shard``) runs on CPU with gloo in this torch version, so it is tested as is,
with DTensor gradients sharded on dim 0 (uneven shards: 13 and 5 rows over 2 ranks).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available in this torch build", allow_module_level=True)

from refinedlr import read_record  # noqa: E402

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import _dist_run as dr  # noqa: E402

STEPS = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_ranks(script: str, args_of_rank: Any, env: dict[str, str]) -> None:
    """Start one process per rank (as torchrun would) on a free port and wait for them all. The
    port is chosen before the processes bind it, so another program on this shared machine may
    take it first: then (and only then) the start is retried on a new port."""
    for attempt in range(3):
        port = str(free_port())
        procs = [
            subprocess.Popen(
                [sys.executable, str(HERE / script), *args_of_rank(r, port)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for r in range(dr.WORLD)
        ]
        errors = []
        for proc in procs:
            try:
                _, err = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if proc.returncode != 0:
                errors.append(err[-4000:])
        if errors and attempt < 2 and any("address already in use" in e.lower() for e in errors):
            continue
        assert not errors, "\n".join(errors)
        return


def launch(mode: str, out: Path) -> list[dict]:
    """Run ``_dist_run.py`` on every rank and load what each saved."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_ranks("_dist_run.py", lambda r, port: [mode, str(out), port, str(STEPS), str(r)], env)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(dr.WORLD)]


def reference(clip: bool) -> tuple[np.ndarray, np.ndarray, list[torch.Tensor]]:
    """Single process, full batch: (pre-clip [l2, l1] per step, post-clip l2, final params)."""
    model = dr.build_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    pre, post = [], []
    for step in range(STEPS):
        x, y = dr.batch(step)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        grads = [p.grad for p in model.parameters()]
        l1 = torch.nn.utils.get_total_norm(grads, 1.0).item()
        if clip:
            l2 = torch.nn.utils.clip_grad_norm_(model.parameters(), dr.MAX_NORM).item()
        else:
            l2 = torch.nn.utils.get_total_norm(grads, 2.0).item()
        post.append(torch.nn.utils.get_total_norm(grads, 2.0).item())
        pre.append([l2, l1])
        opt.step()
    return np.array(pre), np.array(post), [p.detach() for p in model.parameters()]


@pytest.mark.multiprocess
@pytest.mark.slow
def test_ddp_every_rank_same_global_norm_one_writer(tmp_path: Path) -> None:
    results = launch("ddp", tmp_path)
    ref_pre, _, _ = reference(clip=False)
    r0, r1 = results
    assert (r0["is_writer"], r1["is_writer"]) == (True, False)
    # every rank computed the same global norm (DDP averaged the gradients) ...
    np.testing.assert_allclose(r0["norms"].numpy(), r1["norms"].numpy(), rtol=1e-12)
    # ... equal to the single-process norm of the whole batch
    np.testing.assert_allclose(r0["norms"].numpy(), ref_pre, rtol=1e-5)
    # exactly one rank wrote the file: one row per step, no duplicates
    record = read_record(tmp_path / "ddp.csv")
    assert record.steps.tolist() == list(range(STEPS))
    np.testing.assert_allclose(record.values["l2"], ref_pre[:, 0], rtol=1e-5)
    np.testing.assert_allclose(record.values["l1"], ref_pre[:, 1], rtol=1e-5)


@pytest.mark.multiprocess
@pytest.mark.slow
def test_fsdp2_dtensor_norms_match_single_process(tmp_path: Path) -> None:
    """FSDP2 on CPU/gloo: DTensor gradients; recorded norms (pre-clip by clip_grad_norm_,
    post-clip by the attached hook) and the clipped training equal the single process's."""
    results = launch("fsdp", tmp_path)
    ref_pre, ref_post, ref_params = reference(clip=True)
    for r in results:
        assert all("Shard(dim=0)" in p for p in r["placements"])  # really sharded DTensor grads
        np.testing.assert_allclose(r["norms"].numpy(), ref_pre, rtol=1e-5)
        np.testing.assert_allclose(r["post"].numpy()[:, 0], ref_post, rtol=1e-5)
        # clipping used the same global norm: the trained parameters agree
        for p, q in zip(r["params"], ref_params, strict=True):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
        # other placements: replicated, mixed, a 2-D mesh, plain tensors next to DTensors
        for got_l2, got_l1, true_l2, true_l1 in r["dtensor_cases"]:
            assert got_l2 == pytest.approx(true_l2, rel=1e-6)
            assert got_l1 == pytest.approx(true_l1, rel=1e-6)
    # clipping was active on some steps and not on others
    assert np.any(ref_pre[:, 0] > dr.MAX_NORM) and np.any(ref_pre[:, 0] < dr.MAX_NORM)


@pytest.mark.multiprocess
@pytest.mark.slow
@pytest.mark.parametrize("env", ["env", "none"])
def test_rank_outlives_the_process_group_only_rank0_writes(tmp_path: Path, env: str) -> None:
    """Issue 11 §5: a recorder built before init_process_group, resumed (load_state_dict) before
    it and closed after destroy_process_group: rank 1 neither truncates nor writes the file, with
    RANK in the environment (torchrun) or without it (rank known only while the group exists)."""
    import json

    from refinedlr.records import RecordWriter

    path = tmp_path / "norms.csv"
    with RecordWriter(path, ("l2",)) as w:  # the interrupted run's rows 0..9
        w.write(np.arange(10), np.full((10, 1), 7.0))
    env_vars = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK")}
    run_ranks(
        "_rank_run.py",
        lambda r, port: [str(r), str(tmp_path), port, env],
        {**env_vars, "OMP_NUM_THREADS": "1"},
    )
    infos = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [(i["rank"], i["is_writer"]) for i in infos] == [(0, True), (1, False)]
    record = read_record(path)
    assert record.steps.tolist() == list(range(10))  # each step once
    # rows before the resume step kept; later ones are rank 0's (a rank-1 write would be 1005..)
    assert record.values["l2"].tolist() == [7.0] * 5 + [5.0, 6.0, 7.0, 8.0, 9.0]


@pytest.mark.multiprocess
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ddp_adamw", "fsdp_adamw"])
def test_update_norms_same_on_every_rank_and_as_one_process(tmp_path: Path, mode: str) -> None:
    """Issue 12 §1: update_l2 / update_l1 of AdamW under DDP (replicated state) and FSDP2
    (DTensor state shards, reduced over the mesh): every rank records the same values, equal to
    one process training on the whole batch."""
    from refinedlr.pytorch.updates import update_norms

    results = launch(mode, tmp_path)
    model = dr.build_model()
    opt = dr.adamw(model)
    ref = []
    for step in range(STEPS):
        x, y = dr.batch(step)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        l2 = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]).item()
        opt.step()
        ref.append([l2, *update_norms(opt, ("update_l2", "update_l1")).tolist()])
    r0, r1 = results
    np.testing.assert_allclose(r0["norms"].numpy(), r1["norms"].numpy(), rtol=1e-12)
    np.testing.assert_allclose(r0["norms"].numpy(), np.array(ref), rtol=1e-4)
