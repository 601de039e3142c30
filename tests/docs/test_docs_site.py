"""The documentation site: it builds in strict mode, every internal link resolves, the references
are complete, and it works in a real browser.

The site is built once for this module with ``./scripts/docs build DIR`` (the command CI and
users run). The browser test serves it on localhost and drives Debian's ``chromium`` headless with
playwright; without chromium it skips and says how to install it (CI sets
``REFINEDLR_REQUIRE_BROWSER=1``, which turns that skip into a failure).
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import importlib
import os
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# public modules and the reference page each is documented on
PUBLIC_MODULES = [
    "refinedlr.schedules",
    "refinedlr.registry",
    "refinedlr.refinement",
    "refinedlr.verify",
    "refinedlr.risk",
    "refinedlr.bounds",
    "refinedlr.records",
    "refinedlr.schedule_io",
    "refinedlr.summary",
    "refinedlr.plot",
    "refinedlr.limits",
    "refinedlr.fileio",
    "refinedlr.pytorch",
    "refinedlr.integrations.transformers",
    "refinedlr.integrations.lightning",
    "refinedlr.integrations.optax",
]

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip(
        "sphinx", reason="the docs extra is not installed: pip install -e '.[docs]'"
    )
    out = tmp_path_factory.mktemp("docs") / "site"
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "docs"), "build", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, (
        f"the strict docs build failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    )
    return out


# -- the built files -------------------------------------------------------------------------------


class _Page(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.refs: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "a" and a.get("name"):
            self.ids.add(str(a["name"]))
        for attr in ("href", "src"):
            if a.get(attr) and tag in ("a", "img", "link", "script", "source"):
                self.refs.append(str(a[attr]))
        self._in_title = tag == "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False


@functools.cache
def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_every_internal_link_and_anchor_resolves(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 30, f"only {len(pages)} pages"
    broken = []
    for path in pages:
        for ref in _parse(path).refs:
            parts = urllib.parse.urlsplit(ref)
            if parts.scheme or parts.netloc or ref.startswith(("mailto:", "javascript:", "data:")):
                continue  # external: not fetched (offline), never loaded by the pages themselves
            target = (
                (path.parent / urllib.parse.unquote(parts.path)).resolve() if parts.path else path
            )
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or site.resolve() not in target.parents:
                broken.append(f"{path.relative_to(site)}: {ref} (no file)")
            elif parts.fragment and target.suffix == ".html":
                if urllib.parse.unquote(parts.fragment) not in _parse(target).ids:
                    broken.append(f"{path.relative_to(site)}: {ref} (no anchor)")
    assert not broken, "\n".join(broken[:50])


def test_api_reference_documents_every_public_name(site: Path) -> None:
    documented = _inventory(site)
    missing = []
    for module_name in PUBLIC_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # an adapter whose framework is not installed (its page says so)
        for name in module.__all__:
            if f"{module_name}.{name}" not in documented:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"public names without an API entry: {missing}"
    import refinedlr

    for name in refinedlr.__all__:  # the top-level names, at their defining module
        if name.startswith("__"):
            continue
        assert any(d.endswith("." + name) for d in documented if d.startswith("refinedlr.")), name


def _inventory(site: Path) -> set[str]:
    """The Python objects of the site's ``objects.inv`` (format v2: 4 header lines, zlib)."""
    import zlib

    raw = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = raw.index(b"\n", header_end) + 1
    lines = zlib.decompress(raw[header_end:]).decode("utf-8").splitlines()
    return {line.split()[0] for line in lines if " py:" in line}


def test_cli_reference_is_the_parsers_help(site: Path) -> None:
    """Each command's block on the CLI page is exactly what ``refinedlr COMMAND --help`` prints."""
    import sys

    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        from refinedlr_docs import _parser_and_commands, render_help
    finally:
        sys.path.remove(str(ROOT / "docs" / "_ext"))
    text = html.unescape((site / "reference" / "cli.html").read_text(encoding="utf-8"))
    _, commands = _parser_and_commands()
    for command in [None, *commands]:
        first = render_help(command).splitlines()[0]
        assert first in text, f"no help of {command or 'refinedlr'} on the CLI page"


def test_evidence_pages_are_the_committed_reports(site: Path) -> None:
    """The evidence pages hold the reports' own headings, and every figure of a report is shown."""
    import re

    results = ROOT / "results"
    if (ROOT / "research" / "results").is_dir():
        results = ROOT / "research" / "results"
    pairs = {
        "evidence/convex.html": results / "convex" / "report.md",
        "evidence/deep.html": results / "deep" / "README.md",
        "evidence/refinement-study.html": results / "refinement-study" / "report.md",
    }
    for page, report in pairs.items():

        def plain(text: str) -> str:
            text = text.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
            return " ".join(re.sub(r"[`*]", "", text).split())

        shown_text = plain(re.sub(r"<[^>]+>", " ", html.unescape((site / page).read_text("utf-8"))))
        report_text = report.read_text(encoding="utf-8")
        for heading in re.findall(r"^#{1,3} (.+)$", report_text, flags=re.M):
            assert plain(heading) in shown_text, f"{page}: no heading {plain(heading)!r}"
        # figures: inline images, and figures the report links to (the site shows them inline)
        images = re.findall(r"\]\(([^)]+\.png)\)", report_text)
        shown = [Path(src).name for src in _parse(site / page).refs if src.endswith(".png")]
        for image in images:
            stem = Path(image).stem
            assert any(name.startswith(stem) for name in shown), f"{page}: figure {image} missing"


# -- the browser -----------------------------------------------------------------------------------


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and Path("/usr/bin/chromium").exists():
        path = "/usr/bin/chromium"
    message = (
        "no Chromium: install Debian's browser with `apt-get install -y chromium` "
        "(the docs' browser test drives it headless through playwright)"
    )
    if path is None:
        if os.environ.get("REFINEDLR_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# page, a text its <h1> must contain
PAGES = {
    "home": ("index.html", "refinedlr"),
    "tutorial": ("getting-started/first-schedule.html", "Your first refined schedule"),
    "api": ("reference/api/pytorch.html", "ScheduleLR and GradNormRecorder"),
    "evidence": ("evidence/convex.html", "Convex benchmark"),
    "concept": ("concepts/refinement.html", "How refinement works"),
}


def test_site_in_a_browser(served: str, tmp_path: Path) -> None:
    chromium = _chromium()
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed: pip install -e '.[docs]'"
    )
    problems: list[str] = []
    shots: list[Path] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text} ({page.url})")
                    if m.type == "error"
                    else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e} ({page.url})"))
            page.on(
                "request",
                lambda r: (
                    problems.append(f"request outside localhost: {r.url}")
                    if not r.url.startswith((served, "data:", "blob:", "about:"))
                    else None
                ),
            )
            for key, (path, heading) in PAGES.items():
                response = page.goto(f"{served}/{path}")
                assert response is not None and response.ok, (
                    f"{path}: HTTP {response and response.status}"
                )
                page.wait_for_load_state("networkidle")
                h1 = page.locator("h1").first.inner_text()
                assert heading in h1, f"{path}: heading {h1!r}"
                assert heading.split()[0] in page.title() or key == "home", page.title()
                images = page.eval_on_selector_all(
                    "article img",
                    "imgs => imgs.map(i => [i.currentSrc, i.complete, i.naturalWidth])",
                )
                for src, complete, width in images:
                    assert complete and width > 0, f"{path}: figure {src} did not load"
                if key in ("evidence", "concept"):
                    assert images, f"{path}: no figures"
                shot = tmp_path / f"{key}.png"
                page.screenshot(path=str(shot), full_page=False)
                shots.append(shot)
                if images:  # and the first figure, in view
                    page.locator("article img").first.scroll_into_view_if_needed()
                    shot = tmp_path / f"{key}-figure.png"
                    page.screenshot(path=str(shot), full_page=False)
                    shots.append(shot)
            # the API page has an entry for GradNormRecorder, with its signature
            page.goto(f"{served}/reference/api/pytorch.html#refinedlr.pytorch.GradNormRecorder")
            entry = page.locator("dt#refinedlr\\.pytorch\\.GradNormRecorder")
            assert "kinds" in entry.inner_text()
            # search (JavaScript over the built index) finds the refine function and its page
            page.goto(f"{served}/search.html?q=refine")
            page.wait_for_selector("#search-results ul.search li", timeout=30_000)
            results = page.locator("#search-results ul.search li").all_inner_texts()
            assert any("refine" in r.lower() for r in results), results[:5]
            shot = tmp_path / "search.png"
            page.screenshot(path=str(shot))
            shots.append(shot)
        finally:
            browser.close()
    for shot in shots:
        print(f"screenshot: {shot}")
    assert not problems, "\n".join(problems)
