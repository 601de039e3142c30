"""The advice `show`, `refine`, `verify` and `plot` print on logs of large runs (issue 18): two
published fairseq logs and four synthetic logs shaped like the public W&B exports the issue
tried (see _public_logs.py; the synthetic ones say so in their run names)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from _public_logs import published, roberta_norms, synthetic
from refinedlr.cli import main
from refinedlr.decision import bound_verdict
from refinedlr.records import read_record


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("logs")
    return {**published(folder), **synthetic(folder)}


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _peak(out: str) -> int:
    return int(re.search(r"peak           : step (\d+)", out).group(1))  # type: ignore[union-attr]


def test_an_l1_column_is_refined_as_l1_and_says_so(logs, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(capsys, "show", str(logs["roberta"]))
    assert code == 0
    assert (
        "norm: l1, from the column name 'sched/gnorm_l1' (Algorithm 2, for Adam-type optimizers; "
        "--norm l2 to change)"
    ) in out
    assert (
        "refined with tau=0.1 and norm=l1, from l1 gradient norms (column 'sched/gnorm_l1'):" in out
    )
    _, explicit, _ = cli(capsys, "show", str(logs["roberta"]), "--norm", "l1")
    assert _peak(out) == _peak(explicit)
    _, as_l2, _ = cli(capsys, "show", str(logs["roberta"]), "--norm", "l2")
    assert (
        "norm: l2, as asked (--norm); the column 'sched/gnorm_l1' holds l1 norms by its name"
        in as_l2
    )
    assert _peak(as_l2) != _peak(out)
    out_json = logs["roberta"].parent / "r.json"
    code, out, _ = cli(capsys, "refine", str(logs["roberta"]), "-o", str(out_json))
    assert code == 0 and "norm: l1, from the column name 'sched/gnorm_l1'" in out
    assert '"norm": "l1"' in out_json.read_text()


def test_an_unknown_column_says_which_norm_was_assumed(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "norms.npy"
    np.save(path, roberta_norms(400))
    code, out, _ = cli(capsys, "show", str(path), "--as", "log")
    assert code == 0
    assert "norm: l2, assumed: the log names no column and does not say which optimizer" in out
    assert "for Adam-type ones refine with --norm l1" in out


def test_huge_early_norms_make_the_bound_uninformative_not_good_news(logs, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(capsys, "show", str(logs["vit"]), "--norm", "l1")
    assert code == 0
    bound = next(x for x in out.splitlines() if "bound vs linear" in x)
    assert re.search(r"ratio 0\.0\d+ on these norms .*, but uninformative: a few huge norms", bound)
    assert "favours" not in bound
    assert (
        "advice: use linear decay: the bound is uninformative on this record, and a tie goes" in out
    )


def test_the_same_number_gets_the_same_words_in_show_and_verify(logs, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The R-CNN-like log: a ratio near 0.99 is a tie in show, in refine and in verify."""
    code, shown, _ = cli(capsys, "show", str(logs["rcnn"]))
    assert code == 0
    ratio = float(re.search(r"bound vs linear: ratio ([\d.]+)", shown).group(1))  # type: ignore[union-attr]
    assert 0.95 < ratio < 1.0
    words = "inside the tie band 0.95..1.053 (the bound's own uncertainty): a tie"
    assert words in shown and words in bound_verdict(ratio).text
    assert "advice: use linear decay: the bound ratio is inside its tie band" in shown
    code, refined, _ = cli(capsys, "refine", str(logs["rcnn"]), "-o", str(tmp_path / "r.json"))
    assert code == 0 and f"ratio {ratio:.4f}" in refined and words in refined
    # run 2: another run of the same task (another seed of the same shape)
    from _public_logs import rcnn_norms

    run2 = tmp_path / "rcnn_run2.csv"
    run2.write_text(
        "step,gnorm\n" + "".join(f"{i},{v!r}\n" for i, v in enumerate(rcnn_norms(seed=7).tolist()))
    )
    code, out, _ = cli(
        capsys, "verify", str(logs["rcnn"]), str(run2), "-o", str(tmp_path / "n.json")
    )
    assert code == 0
    check = next(x for x in out.splitlines() if "bound check on" in x)
    r2 = float(re.search(r"ratio ([\d.]+)", check).group(1))  # type: ignore[union-attr]
    assert check.endswith(bound_verdict(r2).text) and "a tie" in check
    assert (
        "verify: a tie (the bound ratio is inside its tie band); a tie goes to linear decay" in out
    )
    assert "verify: decision: fall back to linear decay" in out


def test_verify_refuses_the_same_record_twice(logs, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ("roberta", "fairseq_13b_1gpu"):
        path = logs.get(name) or logs["1gpu"]
        code, out, err = cli(capsys, "verify", str(path), str(path), "-o", str(tmp_path / "n.json"))
        assert code == 2 and out == ""
        assert err.startswith(f"refinedlr: error: {path}: the same record as {path}")


def test_the_adam_warning_fires_for_l1_checks(logs, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    run2 = tmp_path / "roberta_run2.csv"
    text = logs["roberta"].read_text().replace("synthetic-roberta", "synthetic-roberta-2")
    rows = text.splitlines()
    rows[1:] = [
        ",".join([r.split(",")[0]] + [repr(float(x) * 1.02) for x in r.split(",")[1:]])
        for r in rows[1:]
    ]
    run2.write_text("\n".join(rows) + "\n")
    for extra in ([], ["--norm", "l1"]):
        code, out, err = cli(
            capsys,
            "verify",
            str(logs["roberta"]),
            str(run2),
            *extra,
            "-o",
            str(tmp_path / "n.json"),
        )
        assert code == 0
        assert err.startswith(
            "refinedlr: warning: the bound check uses the gradient's norms (column "
            "'sched/gnorm_l1') of an Adam-type run (refined with l1 norms)"
        )
        assert "bound check on l1 gradient norms (column 'sched/gnorm_l1')" in out
        assert "but uninformative: gradient norms of an Adam-type run" in out
        assert "verify: decision: fall back to linear decay" in out
    # an SGD record with l2 and l1 columns (the README's quick start) does not warn
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    n = np.r_[np.full(20, 8.0), np.ones(180)]
    for path, scale in ((a, 1.0), (b, 1.01)):
        path.write_text(
            "step,l2,l1\n"
            + "".join(f"{i},{v * scale},{30 * v}\n" for i, v in enumerate(n.tolist()))
        )
    code, _, err = cli(capsys, "verify", str(a), str(b), "-o", str(tmp_path / "m.json"))
    assert code == 0 and "warning" not in err


def test_a_log_that_starts_late_or_has_gaps_says_so(logs) -> None:  # type: ignore[no-untyped-def]
    d = read_record(logs["resnet"]).describe()
    assert d.startswith(f"{logs['resnet']}: 50050 rows over steps 0..500500; kinds grad_norm")
    assert "sparse: one row every 10 steps" in d
    assert "no row before step 10: steps 0..9 take its value" in d
    d = read_record(logs["rcnn"]).describe()
    assert "3 step(s) without a row, interpolated" in d and "every 1 steps" not in d


def test_published_logs(logs, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """fairseq's 13B runs: a spike of 131 among norms near 20 makes the bound uninformative."""
    code, out, _ = cli(capsys, "show", str(logs["1gpu"]))
    assert code == 0 and "norm: l2, from the column name 'gnorm'" in out
    assert "but uninformative: a few huge norms dominate the bound" in out
    assert "starts at 0.24 of its peak, dips to 0.01 at step 2" in out
    code, out, _ = cli(
        capsys,
        "verify",
        str(logs["1gpu"]),
        str(logs["8gpu"]),
        "--metric1",
        "17.953",
        "--metric2",
        "16.624",
        "-o",
        str(tmp_path / "n.json"),
    )
    assert code == 0
    assert "verify: decided by the metric (how sure: unknown): difference 1.329" in out


def test_missing_series_wording(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "w.csv"
    path.write_text('"Step","a - gnorm"\n0,1\n1,2\n2,3\n3,4\n')
    code, _, err = cli(capsys, "show", str(path), "--column", "x")
    assert code == 2 and "the series are ['a - gnorm']" in err and "seriess" not in err


def test_show_a_zero_schedule_is_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    np.save(tmp_path / "zeros.npy", np.zeros(50))
    code, out, err = cli(capsys, "show", str(tmp_path / "zeros.npy"), "--as", "schedule")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"refinedlr: error: {tmp_path / 'zeros.npy'}:")
    assert "zero everywhere" in err


def test_the_troubleshooting_page_shows_the_messages_as_printed(logs, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    page = (Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md").read_text()
    blocks = re.findall(r"```text\n(.*?)```", page, re.S)
    shown = "\n".join(
        b
        for b in blocks
        if "refinedlr: warning: the bound check" in b or "norm: " in b or "bound vs linear" in b
    )
    printed = []
    _, out, _ = cli(capsys, "show", str(logs["vit"]))
    printed += out.splitlines()
    _, out, _ = cli(capsys, "show", str(logs["roberta"]))
    printed += out.splitlines()
    np.save(tmp_path / "n.npy", roberta_norms(300))
    _, out, _ = cli(capsys, "show", str(tmp_path / "n.npy"), "--as", "log")
    printed += out.splitlines()
    run2 = tmp_path / "r2.csv"
    run2.write_text(logs["roberta"].read_text().replace(",4", ",5"))
    _, _, err = cli(
        capsys, "verify", str(logs["roberta"]), str(run2), "-o", str(tmp_path / "x.json")
    )
    printed += err.splitlines()
    lines = [x for x in shown.splitlines() if x.strip()]
    assert len(lines) == 5
    for line in lines:
        assert line in printed, line


def test_plots_have_no_empty_panel_and_say_what_the_axis_is(logs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("matplotlib")
    from refinedlr.plot import plot_norms_and_schedules, plot_schedules
    from refinedlr.registry import get_schedule

    fig = plot_norms_and_schedules(
        {}, {"a": get_schedule("linear", 100), "b": np.linspace(1, 0, 100)}
    )
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel() == "optimizer step"
    assert len(plot_schedules({"a": get_schedule("cosine", 50)}).axes) == 1
    fig = plot_norms_and_schedules(
        {"raw a": np.ones(2760), "raw b": np.ones(500_501)}, {"linear": get_schedule("linear", 10)}
    )
    assert len(fig.axes) == 2
    assert fig.axes[1].get_xlabel() == (
        "fraction of training (t / T of each curve; T from 10 to 500,501 steps)"
    )
    line = fig.axes[0].get_lines()[1]
    assert line.get_xdata()[-1] == pytest.approx(1 - 1 / 500_501)


def test_plot_text_is_drawn_literally(logs, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("matplotlib")
    from refinedlr.plot import plot_norms_and_schedules

    fig = plot_norms_and_schedules(
        {"raw $x_{": np.ones(20)}, {"$\\frac{": np.linspace(1, 0, 20)}, title="$\\frac{a"
    )
    texts = [t for ax in fig.axes for t in ax.get_legend().get_texts()] + [fig._suptitle]
    assert texts and all(not t.get_parse_math() for t in texts)
    odd = tmp_path / "$x_{.csv"
    odd.write_text(logs["rcnn"].read_text())
    png = tmp_path / "p.png"
    code, out, _ = cli(capsys, "plot", str(odd), "--title", "$\\frac{a", "-o", str(png))
    assert code == 0 and png.stat().st_size > 10_000
    code, out, _ = cli(
        capsys,
        "refine",
        str(odd),
        "-o",
        str(tmp_path / "r.json"),
        "--plot",
        str(tmp_path / "r.png"),
    )
    assert code == 0 and (tmp_path / "r.png").stat().st_size > 10_000
    # logs of different lengths: the plot says so
    code, out, _ = cli(
        capsys,
        "plot",
        str(logs["roberta"]),
        str(logs["rcnn"]),
        "--baselines",
        "linear",
        "-o",
        str(png),
    )
    assert code == 0
    assert "roberta_l1.csv: norm l1, from the column name 'sched/gnorm_l1'" in out


def test_setup_offers_a_light_install_and_refuses_unknown_options() -> None:
    import subprocess

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run(
        ["bash", str(root / "scripts" / "setup"), "--bogus"], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert r.stderr == "scripts/setup: unknown option --bogus (use --light, or nothing)\n"
    script = (root / "scripts" / "setup").read_text()
    assert "--light) EXTRAS=demo RESEARCH=() ;;" in script  # the demo extra only, no research
    assert "./scripts/setup --light" in (root / "README.md").read_text()
