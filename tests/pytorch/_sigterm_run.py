"""Helper for the SIGTERM test: ``python _sigterm_run.py MODE PATH`` trains a tiny model for 50
steps with a recorder attached (``flush_every=1000``: nothing reaches the file by itself), prints
``ready`` and sleeps until a signal arrives.

MODE says what handled SIGTERM before the recorder was created:
``default`` (nothing: the process must still die by SIGTERM), ``chained`` (a Python handler that
writes ``PATH.handler`` and exits with status 3), ``ignored`` (``SIG_IGN``: the process lives on). ``forked``: as ``default``, but first a forked
child (as a DataLoader worker is) gets SIGTERM itself: it must die without writing its copy of
the recorder's rows.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import torch

from refinedlr.pytorch import GradNormRecorder


def main(argv: list[str]) -> int:
    mode, path = argv[0], Path(argv[1])
    if mode == "chained":

        def handler(signum: int, frame: object) -> None:
            Path(f"{path}.handler").write_text(str(signum))
            sys.exit(3)

        signal.signal(signal.SIGTERM, handler)
    elif mode == "ignored":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    rec = GradNormRecorder(path, kinds=("l2", "l1"), flush_every=1000)
    rec.attach(opt)
    for _ in range(50):
        opt.zero_grad()
        model(torch.randn(8, 4)).square().mean().backward()
        opt.step()
    if mode == "forked":
        import os

        pid = os.fork()
        if pid == 0:  # the child: SIGTERM to itself; it must not flush the parent's rows
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM):
            print(f"child status {status}", flush=True)
            return 1
    print("ready", flush=True)
    time.sleep(120)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
