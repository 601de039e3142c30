"""The name registry: one meaning per name through every door, and Hugging Face parity."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from refinedlr.registry import (
    available_schedules,
    get_schedule,
    schedule_from_spec,
    schedule_names,
)
from refinedlr.schedule_io import as_schedule, load_schedule, save_schedule
from refinedlr.schedules import (
    Cosine,
    InverseSqrt,
    Polynomial,
    ScheduleError,
    Tabulated,
    WarmupStableDecay,
)

#: Arguments a name cannot do without (everything else has a default).
REQUIRED = {
    "cosine_with_min_lr": {"min_lr_rate": 0.1},
    "tabulated": {"values": [0.2, 1.0, 0.5, 0.0]},
    # a spec nests the base's spec; the base keeps its own warm-up, the continuation has none
    "continuation": {"base": {"name": "wsd", "total_steps": 30}, "at_step": 20, "level": 0.5},
}


def _required(name: str) -> dict[str, Any]:
    for entry in schedule_names():
        if name in (entry.name, *entry.aliases):
            return dict(REQUIRED.get(entry.name, {}))
    raise AssertionError(name)


@pytest.mark.parametrize("name", available_schedules())
@pytest.mark.parametrize("warmup", [0, 3])
def test_every_name_means_the_same_through_every_door(
    name: str, warmup: int, tmp_path: Path
) -> None:
    T = 40
    kw = _required(name)
    if name == "continuation" and warmup:
        with pytest.raises(ScheduleError, match="no warm-up of its own"):
            get_schedule(name, T, warmup=warmup, **kw)
        return
    direct = get_schedule(name, T, warmup=warmup, **kw)
    spec = {"name": name, "total_steps": T, "warmup": warmup, **kw}
    from_spec = schedule_from_spec(spec)
    path = tmp_path / "s.json"
    save_schedule(direct, path)
    from_json = load_schedule(path)
    via_adapter_door = as_schedule(name, T, warmup=warmup, **kw)
    for other in (from_spec, from_json, via_adapter_door):
        assert other == direct
        np.testing.assert_array_equal(other.preview(), direct.preview())
        assert other.fingerprint() == direct.fingerprint()
    # the spec written names the canonical class, and reads back through the registry exactly
    assert schedule_from_spec(direct.to_spec()) == direct


def test_the_two_registries_no_longer_disagree() -> None:
    a = get_schedule("inverse_sqrt", 100)
    b = schedule_from_spec({"name": "inverse_sqrt", "total_steps": 100})
    assert a(50) == b(50) == pytest.approx(np.sqrt(10_000 / 10_050))
    assert get_schedule("1/sqrt_t", 100)(50) == pytest.approx(np.sqrt(1 / 51))
    for name in ("wsd", "constant_with_warmup", "1/t", "refined", "cosine_with_restarts"):
        schedule_from_spec({"name": name, "total_steps": 10, **_required(name)})


def test_names_table_is_complete_and_consistent() -> None:
    names = [n for e in schedule_names() for n in (e.name, *e.aliases)]
    assert len(names) == len(set(names)) == len(available_schedules())
    for e in schedule_names():
        for arg, field in e.accepted().items():
            assert field in e.fields(), (e.name, arg, field)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ScheduleError, match="unknown schedule name 'cosine_restarts'"):
        get_schedule("cosine_restarts", 10)
    with pytest.raises(ScheduleError, match=r"unknown argument\(s\) \['powr'\].*floor"):
        get_schedule("cosine", 10, powr=2)
    with pytest.raises(ScheduleError, match="needs total_steps"):
        get_schedule("cosine")
    with pytest.raises(ScheduleError, match="needs the argument values"):
        get_schedule("refined", 10)
    with pytest.raises(ScheduleError, match="not offered: it follows a metric"):
        get_schedule("reduce_lr_on_plateau", 10)
    with pytest.raises(ScheduleError, match="given twice"):
        get_schedule("cosine", 10, floor=0.1, scheduler_specific_kwargs={"floor": 0.2})
    with pytest.raises(ScheduleError, match="floor twice"):
        get_schedule("wsd", 10, floor=0.1, min_lr_ratio=0.2)
    with pytest.raises(ScheduleError, match="disagree"):
        get_schedule("linear", 10, num_training_steps=20)
    with pytest.raises(ScheduleError, match="MAX_STEPS"):
        get_schedule("linear", 10**10)
    with pytest.raises(ScheduleError, match="MAX_STEPS"):
        schedule_from_spec({"name": "linear", "total_steps": 1e10})


def test_cosine_with_min_lr_needs_a_floor_as_in_hugging_face() -> None:
    with pytest.raises(ScheduleError, match="exactly one of floor, min_lr_rate, min_lr"):
        get_schedule("cosine_with_min_lr", 100)
    assert get_schedule("cosine_with_min_lr", 100, min_lr=1e-4, base_lr=1e-3).floor == 0.1


def test_absolute_learning_rates_need_the_base_learning_rate() -> None:
    with pytest.raises(ScheduleError, match=r"lr_end=1e-05 is an absolute.*floor=lr_end/base_lr"):
        get_schedule("polynomial", 100, lr_end=1e-5)
    with pytest.raises(ScheduleError, match="must be smaller than the base learning rate"):
        get_schedule("polynomial", 100, lr_end=1e-2, base_lr=1e-3)
    assert get_schedule("polynomial", 100, lr_end=1e-5, base_lr=1e-3).floor == pytest.approx(0.01)
    # Hugging Face's lr_end defaults to 1e-7 (absolute): applied when the base LR is known
    assert get_schedule("polynomial", 100, base_lr=1e-3).floor == pytest.approx(1e-4)
    assert get_schedule("polynomial", 100).floor == 0.0


def test_wsd_defaults_to_hugging_faces_cosine_decay() -> None:
    s = get_schedule("warmup_stable_decay", 100, num_decay_steps=20)
    assert isinstance(s, WarmupStableDecay) and s.decay_shape == "cosine"
    assert WarmupStableDecay(100).decay_shape == "cosine"


def test_new_parameters_keep_old_specs_and_fingerprints() -> None:
    """Parameters added later (cycles, stable, warmup_shape) are written only when set."""
    assert "cycles" not in Cosine(10).to_spec()
    assert Cosine(10, cycles=0.75).to_spec()["cycles"] == 0.75
    spec = WarmupStableDecay(10, decay=0.2, decay_shape="linear").to_spec()
    assert set(spec) == {"name", "total_steps", "decay", "decay_shape", "floor"}


# -- Hugging Face's own schedulers ------------------------------------------------------------

BASE_LR = 0.5
HF_CASES: list[tuple[str, dict[str, Any]]] = [
    ("linear", {}),
    ("cosine", {}),
    ("cosine", {"num_cycles": 0.75}),
    ("cosine_with_min_lr", {"min_lr_rate": 0.1}),
    ("cosine_with_min_lr", {"min_lr": 0.05, "num_cycles": 0.4}),
    ("cosine_with_restarts", {"num_cycles": 3}),
    ("polynomial", {}),
    ("polynomial", {"power": 2.0, "lr_end": 1e-3}),
    ("polynomial", {"power": 0.5}),
    ("constant_with_warmup", {}),
    ("inverse_sqrt", {}),
    ("inverse_sqrt", {"timescale": 30}),
    ("warmup_stable_decay", {"num_decay_steps": 0.25}),
    (
        "warmup_stable_decay",
        {"num_decay_steps": 0.25, "decay_type": "linear", "min_lr_ratio": 0.05},
    ),
    (
        "warmup_stable_decay",
        {
            "num_decay_steps": 0.2,
            "decay_type": "1-sqrt",
            "warmup_type": "cosine",
            "min_lr_ratio": 0.1,
        },
    ),
    ("warmup_stable_decay", {"num_decay_steps": 0.2, "warmup_type": "1-sqrt", "num_cycles": 0.3}),
    ("warmup_stable_decay", {"num_decay_steps": 0.1, "num_stable_steps": 0.3}),
]


def _hf_kwargs(kw: dict[str, Any], T: int) -> dict[str, Any]:
    """Fractions of T in the table above become Hugging Face's step counts."""
    out = dict(kw)
    for k in ("num_decay_steps", "num_stable_steps"):
        if isinstance(out.get(k), float):
            out[k] = round(out[k] * T)
    return out


def _hf_lrs(name: str, T: int, W: int, kw: dict[str, Any], steps: int) -> np.ndarray:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE_LR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = transformers.get_scheduler(
            name,
            opt,
            num_warmup_steps=W,
            num_training_steps=T,
            scheduler_specific_kwargs=kw,
        )
        out = []
        for _ in range(steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return np.array(out)


@pytest.mark.parametrize("T,W", [(1000, 50), (60, 0), (97, 13)])
@pytest.mark.parametrize("name,kw", HF_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(HF_CASES)])
def test_hugging_face_names_match_transformers(
    name: str, kw: dict[str, Any], T: int, W: int
) -> None:
    hf_kw = _hf_kwargs(kw, T)
    theirs = _hf_lrs(name, T, W, hf_kw, T)
    ours = BASE_LR * get_schedule(
        name, num_training_steps=T, num_warmup_steps=W, base_lr=BASE_LR,
        scheduler_specific_kwargs=hf_kw,
    ).preview()  # fmt: skip
    # after warm-up: the same schedule
    np.testing.assert_allclose(ours[W:], theirs[W:], rtol=1e-12, atol=1e-15)
    if W:
        # during warm-up, the one documented difference: progress (t + 1) / (W + 1), not t / W,
        # i.e. Hugging Face's own warm-up over W + 1 steps, one step later
        shifted = _hf_lrs(name, T + 1, W + 1, _hf_kwargs(kw, T + 1), W + 1)
        np.testing.assert_allclose(ours[:W], shifted[1 : W + 1], rtol=1e-12)
        assert ours[0] > theirs[0]  # never the zero (or floor) learning rate of step 0


def test_constant_honours_a_warmup_that_hugging_face_ignores() -> None:
    theirs = _hf_lrs("constant", 20, 5, {}, 20)
    assert np.all(theirs == BASE_LR)
    ours = get_schedule("constant", 20, num_warmup_steps=5).preview()
    np.testing.assert_allclose(ours[5:], 1.0)
    assert ours[0] < 1.0


def test_hugging_face_refuses_what_we_refuse() -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE_LR)
    with pytest.raises(ValueError, match="min_lr"):
        transformers.get_scheduler("cosine_with_min_lr", opt, 0, 100)
    with pytest.raises(ScheduleError):
        get_schedule("cosine_with_min_lr", 100)


def test_inverse_sqrt_default_timescale_is_the_warmup() -> None:
    assert isinstance(get_schedule("inverse_sqrt", 100, warmup=7), InverseSqrt)
    assert get_schedule("inverse_sqrt", 100, warmup=7).timescale == 7.0
    assert get_schedule("inverse_sqrt", 100, warmup=0.1).timescale == 10.0


def test_tabulated_and_polynomial_specs_round_trip() -> None:
    t = get_schedule("refined", 10, values=np.linspace(1, 0, 5))
    assert isinstance(t, Tabulated) and t(0) == 1.0 and t(9) == 0.0
    p = Polynomial(10, power=2.0, floor=0.1)
    assert schedule_from_spec(p.to_spec()) == p


def test_the_registry_is_table_driven() -> None:
    """Issue 21: no schedule name is special-cased in code and nothing private is imported:
    Hugging Face's polynomial lr_end default is a field of its table row."""
    import ast
    import inspect

    import refinedlr.registry as reg

    tree = ast.parse(inspect.getsource(reg))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert not [a.name for a in node.names if a.name.startswith("_")], ast.unparse(node)
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute):
            literal = any(isinstance(c, ast.Constant) for c in node.comparators)
            assert not (node.left.attr == "name" and literal), ast.unparse(node)
    poly = next(e for e in reg.schedule_names() if e.name == "polynomial")
    assert poly.absolute_defaults == {"lr_end": 1e-7}
    assert get_schedule("polynomial", 4, base_lr=1e-3).floor == pytest.approx(1e-4)
    assert get_schedule("polynomial", 4).floor == 0.0  # no base LR known: no absolute default
