"""``refinedlr bench`` and ``refinedlr data`` come from the research suite's entry points,
``refinedlr demo`` from the demo package's.

Without the package (no entry point in the group ``refinedlr.commands``) the command says
in one line how to get it, and exits with status 3 (a missing optional part). The tests hide or
replace the entry points in a fresh interpreter before the CLI is imported.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

GROUP = "refinedlr.commands"

# Replaces importlib.metadata.entry_points in the child before refinedlr is imported; the group
# refinedlr.commands then holds what FAKE describes.
CHILD = """
import importlib.metadata as md
import sys

FAKE = {fake!r}
_real = md.entry_points


def entry_points(**kw):
    if kw.get("group") == "refinedlr.commands":
        return md.EntryPoints(
            md.EntryPoint(name, value, "refinedlr.commands") for name, value in FAKE.items()
        )
    return _real(**kw)


md.entry_points = entry_points
from refinedlr.cli import main

sys.exit(main({argv!r}))
"""


def run_cli(argv: list[str], fake: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = CHILD.format(fake=fake, argv=argv)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", ["bench", "data"])
def test_without_the_research_suite_one_line_says_how_to_get_it(command: str) -> None:
    r = run_cli([command, "convex"], fake={})
    assert r.returncode == 3, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"refinedlr {command}" in lines[0]
    assert "research" in lines[0] and "pip install" in lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_without_the_demo_package_one_line_says_how_to_get_it() -> None:
    r = run_cli(["demo", "--quick"], fake={})
    assert r.returncode == 3, r.stderr
    assert r.stderr == (
        "refinedlr: error: 'refinedlr demo' is part of the demo, a package of its own "
        "(refinedlr-demo), which is not installed: from a checkout of the refinedlr repository, "
        "pip install -e ./demo\n"
    )
    assert r.stdout == ""


def test_a_research_suite_that_cannot_load_is_one_line() -> None:
    r = run_cli(["bench", "convex"], fake={"bench": "refinedlr_no_such_module:main"})
    assert r.returncode == 3, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "refinedlr_no_such_module" in lines[0], r.stderr


def test_the_entry_point_gets_the_rest_of_the_command_line() -> None:
    # any main(argv) -> int will do: json.tool's main is not one, so use a module-level lambda
    fake = {"bench": "tests_cli_plugin_target:main"}
    code = (
        "import sys, types\n"
        "m = types.ModuleType('tests_cli_plugin_target')\n"
        "def main(argv):\n"
        "    print('got', argv)\n"
        "    return 7\n"
        "m.main = main\n"
        "sys.modules['tests_cli_plugin_target'] = m\n"
    ) + CHILD.format(fake=fake, argv=["bench", "convex", "--quick", "--out", "x y"])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 7, r.stderr
    assert r.stdout.strip() == "got ['convex', '--quick', '--out', 'x y']"


@pytest.mark.parametrize(
    "rest", [["--quick", "--out", "x y"], ["--help"], ["--bogus", "-h"], [], ["--", "x"]]
)
def test_options_first_go_to_the_plugin_unparsed(rest: list[str]) -> None:
    """argparse would take a leading ``--option`` for the main parser's; it reaches the plugin."""
    code = (
        "import sys, types\n"
        "m = types.ModuleType('tests_cli_plugin_target')\n"
        "m.main = lambda argv: print('got', argv) or 0\n"
        "sys.modules['tests_cli_plugin_target'] = m\n"
    ) + CHILD.format(fake={"demo": "tests_cli_plugin_target:main"}, argv=["demo", *rest])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.strip() == f"got {rest!r}"


def test_the_research_suite_registers_both_commands() -> None:
    names = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    if "bench" not in names:
        pytest.skip("the research suite (research/) is not installed")
    assert {k: v for k, v in names.items() if k != "demo"} == {
        "bench": "refinedlr_bench.cli:bench_main",
        "data": "refinedlr_bench.cli:data_main",
    }


def test_the_demo_package_registers_its_command() -> None:
    names = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    if "demo" not in names:
        pytest.skip("the demo package (demo/) is not installed")
    assert names["demo"] == "refinedlr_demo.cli:main"
