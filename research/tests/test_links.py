"""Relative links in the README, docs/ and the reports resolve to files of the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def relative_links(text: str) -> list[str]:
    """The targets of the markdown links and images in ``text`` that are relative paths.

    >>> relative_links("[a](x.md) ![b](img/p.png) [c](https://e.org) [d](#top) [e](y.md#s)")
    ['x.md', 'img/p.png', 'y.md']
    """
    out = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue
        out.append(target.split("#", 1)[0])
    return out


def documents() -> list[Path]:
    docs = [REPO / "README.md", REPO / "research" / "README.md"]
    docs += sorted((REPO / "docs").glob("*.md"))
    docs += sorted((REPO / "research" / "results").rglob("*.md"))
    return [d for d in docs if d.is_file()]


def test_relative_links_resolve() -> None:
    if not (REPO / "README.md").is_file():
        pytest.skip("not in a checkout of the repository")
    docs = documents()
    assert len(docs) > 8  # the README, docs/ and the reports were found
    broken = [
        f"{doc.relative_to(REPO)}: {target}"
        for doc in docs
        for target in relative_links(doc.read_text(encoding="utf-8"))
        if not (doc.parent / target).exists()
    ]
    assert broken == []


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "here.md").write_text("")
    links = relative_links("[ok](here.md) and [gone](missing/report.md)")
    assert [t for t in links if not (tmp_path / t).exists()] == ["missing/report.md"]
