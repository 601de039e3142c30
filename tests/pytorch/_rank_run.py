"""Helper for the rank test: a recorder built before ``init_process_group`` and closed after
``destroy_process_group``, resumed from a checkpoint state.

``python _rank_run.py RANK OUT_DIR PORT ENV`` is started once per rank. With ``ENV=env`` the
launcher's ``RANK`` is in the environment (as torchrun sets it); with ``ENV=none`` it is not, and
the rank is known only while the process group exists. Each rank:

1. builds ``GradNormRecorder(OUT_DIR/norms.csv, flush_every=100)`` and loads the state
   ``{"step": 5}``, before the process group exists;
2. records steps 5..9 with the values ``1000 * rank + step`` while the group exists (nothing is
   flushed: 5 rows < flush_every);
3. destroys the group; rank 0 closes its recorder and writes ``rank0.done``; rank 1 waits for
   that file and closes after it, so a rank-1 write would land last and show in the file.

Each writes ``rank<r>.json`` with what its recorder said about itself.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

WORLD = 2


def main(argv: list[str]) -> int:
    rank, out, port, env = int(argv[0]), Path(argv[1]), argv[2], argv[3]
    if env == "env":
        os.environ["RANK"] = str(rank)
    else:
        os.environ.pop("RANK", None)
        os.environ.pop("LOCAL_RANK", None)
    from refinedlr.pytorch import GradNormRecorder

    rec = GradNormRecorder(out / "norms.csv", flush_every=100)
    rec.load_state_dict({"version": 1, "step": 5, "kinds": ["l2"]})
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = port
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    for step in range(5, 10):
        rec.record_norms(float(1000 * rank + step))
    dist.barrier()
    dist.destroy_process_group()
    done = out / "rank0.done"
    if rank == 0:
        rec.close()
        done.write_text("")
    else:
        deadline = time.monotonic() + 60
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        rec.close()
    info = {"rank": rec.rank, "is_writer": rec.is_writer, "torch": torch.__version__}
    (out / f"rank{rank}.json").write_text(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
