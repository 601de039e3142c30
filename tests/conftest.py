"""Shared test settings: a reproducible hypothesis profile, and the hostile corpus's summary."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# Property tests are reproducible: the "ci" profile (the default) derandomizes hypothesis, so every
# run draws the same examples (edge cases are pinned with @example besides). HYPOTHESIS_PROFILE=dev
# explores with random seeds and more examples.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=500, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# the hostile corpus's machinery runs in its own process (tests/test_hostile_corpus.py starts it)
collect_ignore = ["hostile"]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = getattr(config, "refinedlr_hostile_summary", None)
    if lines:
        terminalreporter.section("hostile corpus")
        for line in lines:
            terminalreporter.write_line(line)
