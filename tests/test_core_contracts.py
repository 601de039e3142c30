"""Contracts of the core modules (bounds, refinement, schedules) that the other tests left open:
what each error says and names, inputs of every numeric type, defaults, edge values, and
closed-form values. Written against the mutants that survived those tests (scripts/mutation);
each test states behaviour a user relies on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refinedlr.bounds import (
    BoundError,
    all_tail_sum,
    bound_coefficients,
    bound_ratio_to_linear,
    lrs_from_weights,
    optimal_weights,
    weighted_bound,
)

# -- bounds ------------------------------------------------------------------------------------------


def test_bound_errors_name_the_argument() -> None:
    with pytest.raises(BoundError, match=r"^shape must be a 1-D array of real numbers, got dtype"):
        bound_ratio_to_linear(["a", "b"], [1.0, 1.0])
    with pytest.raises(BoundError, match=r"^norms\[1\] = -1.0 must be non-negative"):
        weighted_bound([1.0, 1.0], [1.0, -1.0])
    with pytest.raises(BoundError, match=r"^weights must be a 1-D array of numbers: "):
        lrs_from_weights([[1.0], [1.0, 2.0]])  # ragged
    with pytest.raises(BoundError, match=r"^weights must be a 1-D array of real numbers: "):
        lrs_from_weights(np.array([1.0, "x"], dtype=object))


def test_object_and_integer_inputs_are_read_as_reals() -> None:
    obj = np.array([1.0, 2, 0.5], dtype=object)  # e.g. a list of mixed Python numbers
    np.testing.assert_array_equal(optimal_weights(obj), [1.0, 0.25, 4.0])
    big = np.array([2**40, 2**41], dtype=np.int64)  # g*g would overflow in int64
    np.testing.assert_array_equal(optimal_weights(big), [2.0**-80, 2.0**-82])
    # Python ints beyond int64: still reals (the identity gives the last one)
    assert all_tail_sum([2**70, 2**71], [1, 1]) == pytest.approx(2.0**71, rel=1e-12)


def test_bound_ratio_with_all_zero_norms_is_one() -> None:
    """No gradient at all: every schedule has the bound 0, so none is better than linear decay."""
    assert bound_ratio_to_linear(np.linspace(1.0, 0.1, 10), np.zeros(10)) == 1.0
    assert bound_ratio_to_linear(np.ones(3), np.zeros(3)) == 1.0


def test_bound_defaults() -> None:
    np.testing.assert_array_equal(lrs_from_weights(np.ones(4)), [0.75, 0.5, 0.25, 0.0])  # gamma 1
    a, b = bound_coefficients([1.0, 0.5, 0.0], [1.0, 1.0, 1.0])  # trailing zeros dropped
    assert (round(a, 4), round(b, 4)) == (0.3333, 1.25)
    assert math.isinf(bound_coefficients([1.0, 0.5, 0.0], [1.0] * 3, drop_trailing_zeros=False)[1])


def test_all_zero_weights() -> None:
    message = "^weights are all zero: at least one weight must be positive$"
    with pytest.raises(BoundError, match=message):
        lrs_from_weights(np.zeros(3))
    with pytest.raises(BoundError, match=message):
        weighted_bound(np.zeros(3), np.ones(3))


def test_all_tail_sum_errors() -> None:
    with pytest.raises(BoundError, match=r"^q must be a 1-D array of real numbers: "):
        all_tail_sum(["a"], [1.0])
    with pytest.raises(BoundError, match=r"^q is empty: at least one step is needed$"):
        all_tail_sum([], [1.0])
    with pytest.raises(
        BoundError,
        match=r"^w\[2\] = 0.0 must be positive \(the last weight divides every tail sum\)$",
    ):
        all_tail_sum([1.0, 2.0, 3.0], [1.0, 2.0, 0.0])
