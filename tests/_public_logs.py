"""Gradient-norm logs of large runs for the advice tests: two published ones, four synthetic ones.

**Published** (not written by this project): the two example logs of fairseq's FSDP guide,
https://github.com/facebookresearch/fairseq/blob/main/examples/fully_sharded_data_parallel/README.md
(a 13B-parameter GPT-3-style model, Adam, 10 updates; one run on 1 V100 with CPU offloading, one
on 8 V100s). ``gnorm`` is fairseq's l2 norm of the whole gradient; ``num_updates`` (1-based) is
written here as the 0-based ``step`` (``num_updates - 1``). The values are copied as printed.

**Synthetic** (made here, with fixed seeds, to the shapes issue 18 describes for the public W&B
exports it tried, which this offline machine cannot download):

* ``roberta_l1.csv``: a W&B export of an Adam run whose only series is ``sched/gnorm_l1`` (l1
  norms: large early, falling, then a slow rise);
* ``vit_l1.csv``: a W&B export, l1 norms starting at 515 and falling to a median of 0.62;
* ``rcnn_gnorm.csv``: an SGD run's ``gnorm`` (l2), nearly flat after a short early bump, with a
  few steps missing (bound ratio of the refined schedule near 0.99);
* ``resnet_from10.csv``: an SGD run logged every 10 steps from step 10 to 500,500.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: fairseq FSDP guide, 13B model on 1 GPU with CPU offloading: gnorm at num_updates 1..10.
FAIRSEQ_13B_1GPU = (20.751, 19.777, 131.281, 13.776, 72.774, 60.846, 22.687, 8.451, 6.457, 5.796)
#: the same model on 8 GPUs.
FAIRSEQ_13B_8GPU = (18.27, 18.411, 119.682, 14.934, 59.92, 37.425, 10.824, 5.616, 5.318, 5.22)


def _noise(seed: int, n: int, sd: float) -> np.ndarray:
    return np.exp(np.random.default_rng(seed).normal(0.0, sd, n))


def _wandb(path: Path, run: str, metric: str, steps: np.ndarray, values: np.ndarray) -> Path:
    col = f"{run} - {metric}"
    lines = [f'"Step","{col}","{col}__MIN","{col}__MAX"']
    lines += [
        f"{s},{v!r},{v!r},{v!r}" for s, v in zip(steps.tolist(), values.tolist(), strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _csv(path: Path, column: str, steps: np.ndarray, values: np.ndarray) -> Path:
    rows = [f"step,{column}"] + [
        f"{s},{v!r}" for s, v in zip(steps.tolist(), values.tolist(), strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def published(folder: Path) -> dict[str, Path]:
    """The two fairseq logs as CSV files ``step,gnorm``."""
    steps = np.arange(10)
    return {
        name: _csv(folder / f"fairseq_13b_{name}.csv", "gnorm", steps, np.asarray(v))
        for name, v in (("1gpu", FAIRSEQ_13B_1GPU), ("8gpu", FAIRSEQ_13B_8GPU))
    }


def roberta_norms(T: int = 2760, seed: int = 0) -> np.ndarray:
    t = np.arange(T) / T
    return 4.0e4 * (0.5 + 3.0 * np.exp(-t / 0.03) + 0.8 * t) * _noise(seed, T, 0.05)


def vit_norms(T: int = 3000, seed: int = 1) -> np.ndarray:
    t = np.arange(T)
    return (0.62 + 514.4 * np.exp(-t / 12.0)) * (1.05 - 0.1 * t / T) * _noise(seed, T, 0.08)


def rcnn_norms(T: int = 1800, seed: int = 2) -> np.ndarray:
    t = np.arange(T) / T
    return 1.2 * (1.0 + 0.25 * np.exp(-t / 0.03)) * _noise(seed, T, 0.1)


def synthetic(folder: Path) -> dict[str, Path]:
    """The four synthetic logs (see the module documentation); labelled synthetic in their run
    names."""
    r, v, c = roberta_norms(), vit_norms(), rcnn_norms()
    keep = np.ones(c.size, bool)
    keep[[400, 401, 900]] = False  # a few steps without a row
    steps = np.arange(10, 500_501, 10)
    tt = steps / steps[-1]
    resnet = (2.0 + 1.5 * tt) * _noise(3, steps.size, 0.05)
    return {
        "roberta": _wandb(
            folder / "roberta_l1.csv", "synthetic-roberta", "sched/gnorm_l1", np.arange(r.size), r
        ),
        "vit": _wandb(
            folder / "vit_l1.csv", "synthetic-vit", "sched/gnorm_l1", np.arange(v.size), v
        ),
        "rcnn": _csv(folder / "rcnn_gnorm.csv", "gnorm", np.flatnonzero(keep), c[keep]),
        "resnet": _csv(folder / "resnet_from10.csv", "grad_norm", steps, resnet),
    }
