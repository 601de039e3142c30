"""The design of the refinement study (issue 7): the split, and the methods chosen on it.

The study asks for refinement that never loses to linear decay, and costs less. This module
fixed the development / held-out split *before any study run*, and records the methods chosen on
the development split and the arms run once on the held-out split. The command line is
:mod:`refinedlr_bench.commands.study`.

The split is a seeded random permutation (``numpy.random.default_rng(SPLIT_SEED)``) of the
convex suite :data:`refinedlr_bench.data.DEFAULT_SUITE` in its listed order: the first
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

from refinedlr_bench.data import DEFAULT_SUITE

__all__ = [
    "CHOSEN_CHEAP",
    "CHOSEN_METHOD",
    "DEEP_TASKS",
    "DEV_DATASETS",
    "DEV_DEEP_TASK",
    "HELDOUT_ARMS",
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

#: Chosen on the development split by :func:`~.study_stats.select_method` (fewest losses to
#: linear decay over Adam and SGD, then the mean log geometric-mean ratio; see
#: ``research/results/refinement-study/selection.md``): "refine, then verify" (``refined-verified``), and
#: among the pilot/prefix ("cheap") variants ``pilot-verified-0.1``.
CHOSEN_METHOD = "refined-verified"
CHOSEN_CHEAP = "pilot-verified-0.1"

#: The arms run once on the held-out split: the chosen methods (and the verification runs they
#: need), their unverified counterparts, and the references.
HELDOUT_ARMS: tuple[str, ...] = (
    "linear",
    "cosine",
    "refined-0.1",
    "refined-0.5",
    "pilot-0.1",
    "verify-linear",
    "verify-refined-0.1",
    "verify-refined-at-linear",
    "verify-linear-pilot-0.1",
    "verify-pilot-0.1",
)
