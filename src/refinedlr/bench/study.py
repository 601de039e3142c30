"""``refinedlr bench study``: refinement that never loses to linear decay, and costs less.

Project issue 7. This module fixes the development / held-out split of the study *before any
study run*; the experiments are added below as the study proceeds.

The split is a seeded random permutation (``numpy.random.default_rng(SPLIT_SEED)``) of the
convex suite :data:`refinedlr.bench.data.DEFAULT_SUITE` in its listed order: the first
:data:`N_DEV` datasets are the development split (every method is chosen and tuned there), the
rest are held out and evaluated once. A second permutation of the deep tasks ``("image", "lm")``
from the same generator picks the development deep task; the other is held out.

>>> DEV_DATASETS
('dna', 'spam', 'satimage', 'breast_cancer', 'diabetes', 'wine', 'ionosphere', 'vowel', 'iris')
>>> HELDOUT_DATASETS
('letter', 'glass', 'credit-g', 'vehicle', 'vote', 'segment', 'musk', 'digits', 'shuttle', 'sonar')
>>> DEV_DEEP_TASK, HELDOUT_DEEP_TASK
('image', 'lm')
"""

from __future__ import annotations

import numpy as np

from refinedlr.bench.data import DEFAULT_SUITE

__all__ = [
    "DEEP_TASKS",
    "DEV_DATASETS",
    "DEV_DEEP_TASK",
    "HELDOUT_DATASETS",
    "HELDOUT_DEEP_TASK",
    "N_DEV",
    "SPLIT_SEED",
    "make_split",
]

#: Seed of the split (the issue number).
SPLIT_SEED = 7
#: Development datasets: at most half of the convex suite.
N_DEV = 9
DEEP_TASKS = ("image", "lm")


def make_split(
    datasets: tuple[str, ...] = DEFAULT_SUITE, seed: int = SPLIT_SEED, n_dev: int = N_DEV
) -> tuple[tuple[str, ...], tuple[str, ...], str, str]:
    """``(dev datasets, held-out datasets, dev deep task, held-out deep task)``."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(datasets))
    deep = rng.permutation(len(DEEP_TASKS))
    names = tuple(datasets[int(i)] for i in perm)
    return names[:n_dev], names[n_dev:], DEEP_TASKS[int(deep[0])], DEEP_TASKS[int(deep[1])]


DEV_DATASETS, HELDOUT_DATASETS, DEV_DEEP_TASK, HELDOUT_DEEP_TASK = make_split()
