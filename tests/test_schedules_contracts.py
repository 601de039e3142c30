"""refinedlr.schedules' contracts that the other schedule tests left open: continuations against
their closed form and every refusal they make, steps of every type, tables read on other horizons,
and what specs, fingerprints, equality and hashes hold. Written against the mutants that survived
those tests (scripts/mutation); each test states behaviour a user relies on."""

from __future__ import annotations

import dataclasses
import math
import types
import warnings
from collections.abc import Callable
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _match import exactly
from refinedlr import limits
from refinedlr.schedules import (
    Constant,
    Continuation,
    Cosine,
    FloatArray,
    IntArray,
    LinearDecay,
    Schedule,
    ScheduleError,
    Tabulated,
    WarmupStableDecay,
    _param,
)

SHAPES: dict[str, Callable[[float], float]] = {
    "linear": lambda p: 1.0 - p,
    "1-sqrt": lambda p: 1.0 - math.sqrt(p),
    "cosine": lambda p: 0.5 * (1.0 + math.cos(math.pi * p)),
}


def continuation_reference(
    base: Schedule, T: int, k: int, level: float, cooldown: int, shape: str
) -> list[float]:
    """The docstring's formula, step by step."""
    L = min(cooldown, T - k)
    out = []
    for t in range(T):
        if t < k:
            out.append(base(t))
        elif t < T - L:
            out.append(level)
        else:
            out.append(level * SHAPES[shape]((t - (T - L)) / L))
    return out


# ------------------------------------------------------------------------------------------------
# continuations: the closed form


@pytest.mark.parametrize("shape", ["linear", "1-sqrt", "cosine"])
@pytest.mark.parametrize(("k", "cooldown"), [(8, 4), (8, 8), (8, 30), (3, 1), (19, 5)])
def test_continuation_closed_form(shape: str, k: int, cooldown: int) -> None:
    base = Cosine(20, warmup=2, floor=0.1)
    c = Continuation(
        26,
        base=base,
        at_step=k,
        level=0.6,
        cooldown=cooldown,
        cooldown_shape=shape,  # type: ignore[arg-type]
    )
    want = continuation_reference(base, 26, k, 0.6, cooldown, shape)
    np.testing.assert_allclose(c.preview(), want, rtol=1e-12, atol=1e-15)
    assert c.cooldown_steps == min(cooldown, 26 - k)
    assert c(100) == c.preview()[-1]


def test_continuation_hand_computed() -> None:
    base = LinearDecay(8)  # 1, 7/8, ..., 1/8
    c = Continuation(10, base=base, at_step=4, level=0.5, cooldown=4)
    assert c.preview().tolist() == [1.0, 0.875, 0.75, 0.625, 0.5, 0.5, 0.5, 0.375, 0.25, 0.125]
    full = Continuation(10, base=base, at_step=4, level=0.5, cooldown=100)  # L = T - k = 6
    np.testing.assert_allclose(full.preview()[4:], [0.5 * (1 - i / 6) for i in range(6)])
    assert full.cooldown_steps == 6
    one = Continuation(6, base=base, at_step=5, level=1.0, cooldown=1)
    assert one.preview().tolist() == [1.0, 0.875, 0.75, 0.625, 0.5, 1.0]
    cos = Continuation(6, base=base, at_step=2, level=0.8, cooldown=2, cooldown_shape="cosine")
    np.testing.assert_allclose(cos.preview(), [1.0, 0.875, 0.8, 0.8, 0.8, 0.4])


def test_continuation_defaults() -> None:
    c = Continuation(3)
    assert (c.at_step, c.level, c.cooldown, c.cooldown_shape) == (1, 1.0, 1, "linear")
    assert c.base == Constant(1) and c.provenance == {}
    assert c.preview().tolist() == [1.0, 1.0, 1.0]  # a 1-step cooldown is level * shape(0)


@settings(max_examples=40, deadline=None)
@given(
    T0=st.integers(2, 30),
    extra=st.integers(1, 30),
    data=st.data(),
    level=st.floats(0.01, 1.0),
    shape=st.sampled_from(["linear", "1-sqrt", "cosine"]),
)
def test_continuation_matches_its_formula(
    T0: int, extra: int, data: st.DataObject, level: float, shape: str
) -> None:
    base = LinearDecay(T0, floor=0.05)
    k = data.draw(st.integers(1, T0))
    cooldown = data.draw(st.integers(1, 80))
    T = T0 + extra
    c = Continuation(T, base=base, at_step=k, level=level, cooldown=cooldown, cooldown_shape=shape)  # type: ignore[arg-type]
    np.testing.assert_allclose(
        c.preview(), continuation_reference(base, T, k, level, cooldown, shape), atol=1e-12
    )


# ------------------------------------------------------------------------------------------------
# continuations: refusals, word for word


def test_continuation_refusals() -> None:
    base = LinearDecay(10)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"base": 3}, "base must be a Schedule, got int"),
        ({"base": "linear"}, "base must be a Schedule, got str"),
        ({"at_step": 1.5}, "at_step must be an integer, got 1.5"),
        ({"at_step": 0}, "at_step must be >= 1, got 0"),
        ({"at_step": 20}, "at_step=20 must come before the new horizon total_steps=20"),
        ({"at_step": 11}, "at_step=11 is past the end of the run being continued (10 steps)"),
        ({"warmup": 2}, "a continuation has no warm-up of its own (its base has one)"),
        ({"warmup": 0.1}, "a continuation has no warm-up of its own (its base has one)"),
        ({"level": 0}, "level must be > 0.0, got 0"),
        ({"level": 1.5}, "level must be <= 1.0, got 1.5"),
        ({"level": "1"}, "level must be a number, got '1'"),
        ({"cooldown": 0}, "cooldown must be >= 1, got 0"),
        ({"cooldown": 2.0}, "cooldown must be an integer, got 2.0"),
        ({"cooldown_shape": "x"}, "cooldown_shape must be 'linear', 'cosine' or '1-sqrt', got 'x'"),
    ]
    for args, message in cases:
        kwargs: dict[str, Any] = {"base": base, "at_step": 5, "level": 0.5, "cooldown": 3, **args}
        with pytest.raises(ScheduleError, match=exactly(message)):
            Continuation(20, **kwargs)
    # the edges that are allowed
    assert Continuation(11, base=base, at_step=10).at_step == 10  # the run's last step + 1
    last = Continuation(20, base=LinearDecay(19), at_step=19, level=0.5, cooldown=1)
    assert last.preview()[18] == LinearDecay(19)(18) and last(19) == 0.5
    assert Continuation(20, base=base, at_step=5, warmup=0.0).warmup_steps == 0


def test_continuation_nesting_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    def nest(n: int) -> Schedule:
        s: Schedule = LinearDecay(2)
        for i in range(n):
            s = Continuation(i + 3, base=s, at_step=i + 2)
        return s

    monkeypatch.setattr(limits, "MAX_CONTINUATIONS", 3)
    deepest = nest(3)
    assert isinstance(deepest, Continuation)
    assert deepest.preview().shape == (5,)
    with pytest.raises(
        ScheduleError,
        match=exactly(
            "continuations nested 4 deep: at most refinedlr.limits.MAX_CONTINUATIONS=3 "
            "(plan the extension from the original schedule)"
        ),
    ):
        Continuation(6, base=deepest, at_step=5)


def test_the_default_nesting_limit() -> None:
    assert limits.MAX_CONTINUATIONS == 16
    s: Schedule = LinearDecay(2)
    for i in range(16):
        s = Continuation(i + 3, base=s, at_step=i + 2)
    with pytest.raises(ScheduleError, match=r"^continuations nested 17 deep: "):
        Continuation(19, base=s, at_step=18)


# ------------------------------------------------------------------------------------------------
# continuations: equality, hashes, specs


def test_continuation_equality_and_hash() -> None:
    base = LinearDecay(10)
    c = Continuation(20, base=base, at_step=5, level=0.5, cooldown=3, provenance={"x": 1})
    same = Continuation(20, base=LinearDecay(10), at_step=5, level=0.5, cooldown=3)
    assert c == same and hash(c) == hash(same)
    assert hash(c) == hash(c.fingerprint())
    source = {"by": "extend"}
    kept = Continuation(20, base=base, at_step=5, provenance=types.MappingProxyType(source))
    source["by"] = "hand"  # the continuation keeps its own plain copy
    assert kept.provenance == {"by": "extend"} and type(kept.provenance) is dict
    for other in (
        Continuation(21, base=base, at_step=5, level=0.5, cooldown=3),
        Continuation(20, base=LinearDecay(11), at_step=5, level=0.5, cooldown=3),
        Continuation(20, base=base, at_step=6, level=0.5, cooldown=3),
        Continuation(20, base=base, at_step=5, level=0.4, cooldown=3),
        Continuation(20, base=base, at_step=5, level=0.5, cooldown=4),
        Continuation(20, base=base, at_step=5, level=0.5, cooldown=3, cooldown_shape="cosine"),
        Continuation(20, base=base, at_step=5, level=0.5, cooldown=3, after_horizon="raise"),
    ):
        assert c != other and other != c
    assert c.__eq__(base) is NotImplemented and c != base and (c == "c") is False


def test_continuation_spec() -> None:
    base = LinearDecay(10, warmup=2)
    c = Continuation(20, base=base, at_step=5, level=0.5, cooldown=3, provenance={"by": "extend"})
    assert c.to_spec() == {
        "name": "continuation",
        "total_steps": 20,
        "base": {"name": "linear", "total_steps": 10, "warmup": 2, "floor": 0.0},
        "at_step": 5,
        "level": 0.5,
        "cooldown": 3,
        "cooldown_shape": "linear",
        "provenance": {"by": "extend"},
    }
    assert (
        c.fingerprint()
        == Continuation(20, base=base, at_step=5, level=0.5, cooldown=3).fingerprint()
    )


def test_continuation_cooldown_warns_of_nothing() -> None:
    """The steps before the cooldown never reach its shape (no square root of a negative)."""
    base = LinearDecay(10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in ("1-sqrt", "cosine", "linear"):
            c = Continuation(30, base=base, at_step=5, level=0.5, cooldown=4, cooldown_shape=shape)
            assert c.preview()[5:26].tolist() == [0.5] * 21


def test_continuation_of_a_strict_run() -> None:
    """A base that refuses steps past its horizon is only asked for the steps it ran."""
    base = LinearDecay(10, after_horizon="raise")
    c = Continuation(16, base=base, at_step=10, level=0.5, cooldown=2)
    np.testing.assert_allclose(
        c.preview(), [*(1 - t / 10 for t in range(10)), 0.5, 0.5, 0.5, 0.5, 0.5, 0.25]
    )


# ------------------------------------------------------------------------------------------------
# parameters declared with _param


def test_a_parameter_declared_with_param() -> None:
    """A schedule's parameters check their range on construction, and an optional one reaches the
    spec only when it differs from its default."""

    @dataclasses.dataclass(frozen=True)
    class Scaled(Schedule):
        scale: float = _param(0.5, "[0, 1]")
        extra: int = _param(2, 1, optional=True)
        kind: ClassVar[str] = "scaled"

        def _decay(self, u: IntArray, horizon: int) -> FloatArray:
            return np.full(u.shape, self.scale * 0.5**self.extra)

    assert Scaled(3).preview().tolist() == [0.125] * 3
    assert Scaled(3).to_spec() == {"name": "scaled", "total_steps": 3, "scale": 0.5}
    assert Scaled(3, extra=1).to_spec() == {
        "name": "scaled",
        "total_steps": 3,
        "scale": 0.5,
        "extra": 1,
    }
    with pytest.raises(ScheduleError, match=exactly("scale must be <= 1.0, got 1.5")):
        Scaled(3, scale=1.5)
    with pytest.raises(ScheduleError, match=exactly("extra must be >= 1, got 0")):
        Scaled(3, extra=0)
    field = _param(0.25, "(0, 1]")
    assert field.default == 0.25
    assert dict(field.metadata) == {"check": "(0, 1]", "optional": False}
    assert dict(_param(None, optional=True).metadata) == {"check": None, "optional": True}


# ------------------------------------------------------------------------------------------------
# the other schedules


@pytest.mark.parametrize("shape", ["linear", "1-sqrt", "cosine"])
@pytest.mark.parametrize("cycles", [0.5, 1.0, 1.5])
def test_warmup_stable_decay_ends_on_its_floor(shape: str, cycles: float) -> None:
    """After the decay the multiplier is the floor, whatever the shape would give at p = 1."""
    s = WarmupStableDecay(12, decay=4, stable=3, floor=0.2, decay_shape=shape, cycles=cycles)  # type: ignore[arg-type]
    shape_of: Callable[[float], float] = {
        "linear": lambda p: 1 - p,
        "1-sqrt": lambda p: 1 - math.sqrt(p),
        "cosine": lambda p: 0.5 * (1 + math.cos(2 * math.pi * cycles * p)),
    }[shape]
    decay = [0.2 + 0.8 * shape_of(i / 4) for i in range(4)]
    np.testing.assert_allclose(s.preview(), [1.0] * 3 + decay + [0.2] * 5, rtol=1e-12)
    assert s.preview()[7:].tolist() == [0.2] * 5


def test_tabulated_hash_is_the_fingerprints() -> None:
    a = Tabulated(4, values=np.array([1.0, 0.5, 0.25, 0.0]))
    b = Tabulated(4, values=np.array([1.0, 0.5, 0.2, 0.0]))
    assert hash(a) == hash(a.fingerprint()) and hash(b) == hash(b.fingerprint())
    assert (
        len({a, b, Tabulated(4, values=np.array([1.0, 0.5, 0.25, 0.0]), provenance={"x": 1})}) == 2
    )


def test_tabulated_repr_shows_four_values_to_four_places() -> None:
    assert repr(Tabulated(3, values=np.array([1.0, 1 / 3, 0.0]))) == (
        "Tabulated(total_steps=3, values=[1.    , 0.3333, 0.    ])"
    )
    assert repr(Tabulated(4, values=np.array([1.0, 0.5, 0.25, 0.0]))) == (
        "Tabulated(total_steps=4, values=[1.  , 0.5 , 0.25, 0.  ])"
    )
    assert repr(Tabulated(5, values=np.array([1.0, 0.75, 0.5, 0.25, 0.0]))) == (
        "Tabulated(total_steps=5, values=[1.  , 0.75, 0.5 , 0.25] ... (5 values))"
    )


def test_tabulated_from_values_normalizes_any_real_numbers() -> None:
    s = Tabulated.from_values(
        np.array([0.5, 0.25, 0.0]), normalize=True
    )  # a maximum below 1 is scaled up
    assert s.values.tolist() == [1.0, 0.5, 0.0]
    exact = Tabulated.from_values(
        np.array([Fraction(1, 2), Fraction(1, 4), 0], dtype=object), normalize=True
    )
    assert exact.values.tolist() == [1.0, 0.5, 0.0] and exact.total_steps == 3
    assert Tabulated.from_values(np.array([Fraction(1, 2)], dtype=object)).values.tolist() == [0.5]
    with pytest.raises(
        ScheduleError, match=exactly("values must be a non-empty 1-D array, got shape ()")
    ):
        Tabulated.from_values(0.5)


def test_steps_of_every_integer_type() -> None:
    s = LinearDecay(4)
    empty = s(np.array([], dtype=np.int64))
    assert isinstance(empty, np.ndarray) and empty.shape == (0,) and empty.dtype == np.float64
    assert s(np.array([], dtype=np.float64)).shape == (0,)  # type: ignore[union-attr]
    assert s([]).shape == (0,)  # type: ignore[union-attr]
    strict = LinearDecay(4, after_horizon="raise")
    assert strict(np.array([], dtype=np.int64)).shape == (0,)  # type: ignore[union-attr]
    np.testing.assert_array_equal(s(np.array([3, 0, 9], dtype=np.uint8)), [0.25, 1.0, 0.25])
    assert s(np.int32(2)) == 0.5 and type(s(np.int32(2))) is float
    got = s(np.array([[0, 1], [2, 3]]))
    assert got.shape == (2, 2) and got.tolist() == [[1.0, 0.75], [0.5, 0.25]]  # type: ignore[union-attr]
    got[0, 0] = 0.0  # type: ignore[index]
    assert s(0) == 1.0  # the caller's copy is the caller's
    preview = s.preview()
    preview[0] = 0.0
    assert preview.flags.writeable and s.preview()[0] == 1.0
    for bad in (np.array([True]), np.bool_(True), np.array([1 + 0j])):
        with pytest.raises(ScheduleError, match=r"^steps must be integers, got .* of type "):
            s(bad)
