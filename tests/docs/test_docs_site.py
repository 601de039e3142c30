"""The documentation site: it builds in strict mode, every internal link resolves, the references
are complete, and it works in a real browser.

The site is built once for this module with ``./scripts/docs build DIR`` (the command CI and
users run). The browser test serves it on localhost and drives Debian's ``chromium`` headless with
playwright; without chromium it skips and says how to install it (CI sets
``REFINEDLR_REQUIRE_BROWSER=1``, which turns that skip into a failure).
"""

from __future__ import annotations

import functools
import html
import html.parser
import http.server
import importlib
import json
import os
import re
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
    """The evidence pages hold the reports' own headings (the page gives its own title, and
    issue numbers are dropped), and every figure of a report is shown."""
    results = ROOT / "research" / "results"
    pairs = {
        "evidence/convex.html": results / "convex" / "report.md",
        "evidence/deep.html": results / "deep" / "README.md",
        "evidence/refinement-study.html": results / "refinement-study" / "report.md",
    }
    for page, report in pairs.items():

        def plain(text: str) -> str:
            text = text.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
            text = re.sub(r"\s*\(issues? [\d, and]+\)", "", text)
            return " ".join(re.sub(r"[`*]", "", text).split())

        shown_text = plain(re.sub(r"<[^>]+>", " ", html.unescape((site / page).read_text("utf-8"))))
        report_text = report.read_text(encoding="utf-8")
        for heading in re.findall(r"^#{2,3} (.+)$", report_text, flags=re.M):
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


# -- the evidence section and the search index (built files) ---------------------------------------

# the Evidence section of the navigation: group pages, each with the pages it groups
EVIDENCE_GROUPS = {
    "evidence/index.html": ("Evidence", []),
    "evidence/summary.html": ("What to use", []),
    "evidence/convex.html": ("Convex problems", ["evidence/convex-discussion.html"]),
    "evidence/deep.html": ("Deep tasks", ["evidence/deep-image.html", "evidence/deep-lm.html"]),
    "evidence/refinement-study.html": (
        "How refinement was tested",
        [
            "evidence/study-split.html",
            "evidence/study-selection.html",
            "evidence/study-discussion.html",
        ],
    ),
    "evidence/planning.html": ("Planning from the bound", ["evidence/planning-discussion.html"]),
}
# what a report that printed Python values looks like: ('name', 7, -0.0282...), ['a', 'b', ...]
# (not code that passes one: f(kinds=('l2', 'l1')))
PYTHON_DUMP = re.compile(r"(?<![\w=])[(\[]'[^'\n]*', (?:-?\d|')|\d\.\d{12,}\)")


def _searchindex(site: Path) -> dict[str, object]:
    text = (site / "searchindex.js").read_text(encoding="utf-8")
    assert text.startswith("Search.setIndex("), text[:40]
    return json.loads(text[text.index("(") + 1 : text.rindex(")")])  # type: ignore[no-any-return]


def _sidebar_tree(site: Path, page: str) -> list[tuple[int, str, str]]:
    """furo's navigation on ``page``: (depth, link relative to the site, text) under "Evidence"."""

    class Tree(html.parser.HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.items: list[tuple[int, str, str]] = []
            self.caption = ""
            self._in_tree = self._in_caption = False
            self._depth = 0
            self._href: str | None = None
            self._text = ""

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "div" and "sidebar-tree" in (a.get("class") or ""):
                self._in_tree = True
            if not self._in_tree:
                return
            if tag == "p" and "caption" in (a.get("class") or ""):
                self._in_caption, self.caption = True, ""
            elif tag == "ul":
                self._depth += 1
            elif tag == "a" and self.caption == "Evidence":
                self._href, self._text = a.get("href") or "", ""

        def handle_data(self, data: str) -> None:
            if self._in_caption:
                self.caption += data
            elif self._href is not None:
                self._text += data

        def handle_endtag(self, tag: str) -> None:
            if tag == "p" and self._in_caption:
                self._in_caption = False
                self.caption = self.caption.strip()
            elif tag == "ul" and self._in_tree:
                self._depth -= 1
            elif tag == "a" and self._href is not None:
                href = self._href.split("#")[0]  # "#": the page itself
                target = (site / page).parent / href if href else site / page
                rel = target.resolve().relative_to(site).as_posix()
                self.items.append((self._depth, rel, " ".join(self._text.split())))
                self._href = None

    tree = Tree()
    tree.feed((site / page).read_text(encoding="utf-8"))
    return tree.items


def test_evidence_is_grouped_under_user_facing_titles(site: Path) -> None:
    """The navigation's Evidence section lists the groups, each page of a group under it, and no
    title anywhere on the site carries the project's internal issue numbers."""
    site = site.resolve()
    for shown_on in ("index.html", "evidence/index.html", "evidence/deep-lm.html"):
        groups: dict[str, list[str]] = {}
        titles: dict[str, str] = {}
        for depth, href, text in _sidebar_tree(site, shown_on):
            if depth == 1:
                groups[href], titles[href] = [], text
            else:
                assert depth == 2 and groups, (shown_on, depth, href)
                groups[list(groups)[-1]].append(href)
        assert list(groups) == list(EVIDENCE_GROUPS), f"{shown_on}: {list(groups)}"
        for group, (title, members) in EVIDENCE_GROUPS.items():
            assert titles[group].startswith(title), f"{shown_on}: {group} is {titles[group]!r}"
            assert groups[group] == members, f"{shown_on}: {group} holds {groups[group]}"
    pages = {p.relative_to(site).as_posix() for p in (site / "evidence").glob("*.html")}
    grouped = set(EVIDENCE_GROUPS) | {m for _, ms in EVIDENCE_GROUPS.values() for m in ms}
    assert pages == grouped, f"evidence pages in no group: {sorted(pages - grouped)}"
    index = _searchindex(site)
    titles = list(index["titles"]) + list(index["alltitles"])  # type: ignore[call-overload]
    internal = [t for t in titles if re.search(r"\bissues? \d+", t, re.I)]
    assert not internal, f"titles with internal issue numbers: {internal}"


def test_no_raw_python_values_in_the_search_index_or_results(site: Path) -> None:
    """Search results quote the text of the pages; neither the index nor the text of a page
    (outside the API reference, where Python values are the subject) holds printed Python values
    such as ``('pilot-envelope-0.25', 7, -0.02823175128177348)``."""
    raw = (site / "searchindex.js").read_text(encoding="utf-8")
    assert not PYTHON_DUMP.search(raw), PYTHON_DUMP.search(raw)
    dumps = []
    for path in sorted(site.rglob("*.html")):
        rel = path.relative_to(site).as_posix()
        if rel.startswith(("_modules/", "reference/api/")):
            continue
        page = path.read_text(encoding="utf-8")
        # Python examples (>>> blocks) show Python values as Python: that is their point
        page = re.sub(r"<pre>(?:(?!</pre>).)*?&gt;&gt;&gt; .*?</pre>", "", page, flags=re.S)
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        dumps += [f"{rel}: {m.group(0)}..." for m in PYTHON_DUMP.finditer(text)]
    assert not dumps, "\n".join(dumps[:20])
    # the page that had them shows the same ranking as text columns
    text = html.unescape(
        re.sub(r"<[^>]+>", "", (site / "evidence" / "study-selection.html").read_text("utf-8"))
    )
    assert re.search(r"^pilot-envelope-0\.25 +7 +-0\.0282$", text, re.M), "ranking not shown"


def test_the_dump_pattern_finds_dumps() -> None:
    """The pattern above is not vacuous: it matches what the report printed, not prose."""
    for dump in (
        "('pilot-envelope-0.25', 7, -0.02823175128177348)",
        "datasets: ['breast_cancer', 'diabetes']",
        "[('a', 0, -0.06)]",
    ):
        assert PYTHON_DUMP.search(dump), dump
    for text in (
        "pilot-envelope-0.25  7  -0.0282",
        "(0.09289520841294305 became ...303)",
        "GradNormRecorder(path, kinds=('l2', 'l1'))",
    ):
        assert not PYTHON_DUMP.search(text), text


# -- the browser -----------------------------------------------------------------------------------

# page, a text its <h1> must contain
PAGES = {
    "home": ("index.html", "refinedlr"),
    "tutorial": ("getting-started/first-schedule.html", "Your first refined schedule"),
    "api": ("reference/api/pytorch.html", "ScheduleLR and GradNormRecorder"),
    "evidence": ("evidence/convex.html", "Convex problems"),
    "concept": ("concepts/refinement.html", "How refinement works"),
}
WIDE, NARROW = 1400, 600  # the reported window width, and a narrow one (furo's one-column layout)


@pytest.fixture(scope="module")
def browser(served: str) -> Iterator[object]:
    chromium = _chromium()
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed: pip install -e '.[docs]'"
    )
    with sync_api.sync_playwright() as p:
        # scroll bars as a user's browser draws them (playwright hides them by default)
        b = p.chromium.launch(
            executable_path=chromium, args=CHROMIUM_FLAGS, ignore_default_args=["--hide-scrollbars"]
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Iterator[Path]:
    """Where screenshots go: $REFINEDLR_DOCS_SCREENSHOTS, else the test's temporary folder."""
    folder = Path(os.environ.get("REFINEDLR_DOCS_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    yield folder


class _Tab:
    """A page in its own browser context that records console errors, page errors, failed
    requests and requests that leave localhost (the site must work offline)."""

    def __init__(self, browser: object, served: str, width: int, **context: object) -> None:
        self.served = served
        self.problems: list[str] = []
        self.context = browser.new_context(viewport={"width": width, "height": 900}, **context)  # type: ignore[attr-defined]
        self.page = page = self.context.new_page()

        def console(m: object) -> None:
            # a failed load is reported with its address by the response handler below
            if m.type == "error" and not m.text.startswith("Failed to load resource"):  # type: ignore[attr-defined]
                self.problems.append(f"console error: {m.text} ({page.url})")  # type: ignore[attr-defined]

        def response(r: object) -> None:
            url = r.url  # type: ignore[attr-defined]
            # a figure opened on its own is the browser's page, which asks for /favicon.ico
            image_view = not urllib.parse.urlsplit(page.url).path.endswith((".html", "/"))
            if r.status >= 400 and not (image_view and url.endswith("/favicon.ico")):  # type: ignore[attr-defined]
                self.problems.append(f"HTTP {r.status}: {url} ({page.url})")  # type: ignore[attr-defined]

        page.on("console", console)
        page.on("response", response)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e} ({page.url})"))
        page.on(
            "request",
            lambda r: (
                self.problems.append(f"request outside localhost: {r.url}")
                if not r.url.startswith((served, "data:", "blob:", "about:"))
                else None
            ),
        )

    def open(self, path: str, until: str = "networkidle") -> object:
        response = self.page.goto(f"{self.served}/{path}", wait_until=until)
        assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
        return self.page

    def close(self) -> None:
        self.context.close()
        assert not self.problems, "\n".join(self.problems)


def test_site_in_a_browser(browser: object, served: str, shots: Path) -> None:
    tab = _Tab(browser, served, WIDE)
    page = tab.page
    taken: list[Path] = []
    for key, (path, heading) in PAGES.items():
        tab.open(path)
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
        taken.append(shots / f"{key}.png")
        page.screenshot(path=str(taken[-1]), full_page=False)
        if images:  # and the first figure, in view
            page.locator("article img").first.scroll_into_view_if_needed()
            taken.append(shots / f"{key}-figure.png")
            page.screenshot(path=str(taken[-1]), full_page=False)
    # the API page has an entry for GradNormRecorder, with its signature
    page.goto(f"{served}/reference/api/pytorch.html#refinedlr.pytorch.GradNormRecorder")
    entry = page.locator("dt#refinedlr\\.pytorch\\.GradNormRecorder")
    assert "kinds" in entry.inner_text()
    # search (JavaScript over the built index) finds the refine function and its page
    results = _search(tab, "refine")
    assert any("refine" in text.lower() for _, text in results), results[:5]
    taken.append(shots / "search.png")
    page.screenshot(path=str(taken[-1]))
    tab.close()
    for shot in taken:
        print(f"screenshot: {shot}")


# -- code blocks -----------------------------------------------------------------------------------

# the blocks the report found cut off at 1400 px: they fit the column there
MUST_FIT = ["getting-started/first-schedule.html", "reference/cli.html", "troubleshooting.html"]

_PRE_STATE = """pres => pres.map(p => {
  const box = p.parentElement, after = getComputedStyle(box, "::after");
  const lines = p.textContent.split("\\n");
  return {
    longest: Math.max(...lines.map(l => l.length)),
    first: lines.find(l => l.length === Math.max(...lines.map(x => x.length))).slice(0, 60),
    scrollWidth: p.scrollWidth, clientWidth: p.clientWidth,
    bar: p.offsetHeight - p.clientHeight - parseFloat(getComputedStyle(p).borderTopWidth)
         - parseFloat(getComputedStyle(p).borderBottomWidth),
    overflowX: getComputedStyle(p).overflowX,
    fade: box.classList.contains("scrolls-x") && after.display !== "none"
          && after.backgroundImage.includes("gradient") && parseFloat(after.width) >= 16
          && Math.abs(parseFloat(after.height) - box.clientHeight) < 2,
  };
})"""


def _content_pages(site: Path) -> list[str]:
    return sorted(
        p.relative_to(site).as_posix()
        for p in site.rglob("*.html")
        if not p.relative_to(site).as_posix().startswith(("_modules/", "search", "genindex"))
    )


@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_code_blocks_fit_or_visibly_scroll(
    browser: object, served: str, site: Path, shots: Path, width: int
) -> None:
    """Every code block of every page either fits the column, or scrolls sideways with a visible
    scroll bar and a fade at its right edge over its whole height; scrolled to its end, the last
    characters are in view and the fade goes. At 1400 px the tutorial, the CLI help and the
    troubleshooting messages fit."""
    tab = _Tab(browser, served, width)
    page = tab.page
    problems: list[str] = []
    scrolling = 0
    for path in _content_pages(site):
        tab.open(path, until="load")  # the page's scripts have run, its figures are in
        for i, pre in enumerate(
            page.eval_on_selector_all("article div.highlight > pre", _PRE_STATE)
        ):
            where = f"{path} block {i + 1} ({pre['longest']} columns: {pre['first']!r})"
            if pre["scrollWidth"] <= pre["clientWidth"] + 1:  # (rounding)
                continue
            if width == WIDE and path in MUST_FIT:
                problems.append(f"{where}: wider than the column at {width} px")
            scrolling += 1
            if pre["overflowX"] not in ("auto", "scroll") or pre["bar"] < 4 or not pre["fade"]:
                problems.append(f"{where}: cut off without a visible scroll bar and fade: {pre}")
        # scrolled to the end: the fade goes, the end of the longest line is in view
        ends = page.eval_on_selector_all(
            "article div.highlight.scrolls-x > pre",
            """async pres => {
              const out = [];
              for (const p of pres) {
                p.scrollLeft = p.scrollWidth;
                await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
                out.push([p.scrollLeft + p.clientWidth >= p.scrollWidth - 1,
                          p.parentElement.classList.contains("scrolled-end")]);
              }
              return out;
            }""",
        )
        problems += [f"{path}: a block does not scroll to its end" for end, _ in ends if not end]
        problems += [f"{path}: the fade stays at the end" for _, gone in ends if not gone]
    assert not problems, "\n".join(problems[:30])
    if width == NARROW:  # the narrow window has blocks that scroll: the checks above ran
        assert scrolling > 0
        tab.open("getting-started/first-schedule.html")
        page.locator("article div.highlight.scrolls-x").first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / f"code-{width}.png"))
    else:
        tab.open("troubleshooting.html")
        page.locator("article div.highlight-pycon").nth(1).scroll_into_view_if_needed()
        page.screenshot(path=str(shots / f"code-{width}.png"))
    tab.close()


# -- copy buttons ----------------------------------------------------------------------------------


def _copy(tab: _Tab, block: object) -> str:
    """Click the copy button of ``block`` (it shows on hover) and read the clipboard."""
    block.hover()  # type: ignore[attr-defined]
    button = block.locator("button.copybtn")  # type: ignore[attr-defined]
    button.click()
    return str(tab.page.evaluate("navigator.clipboard.readText()"))


def test_copy_buttons_copy_code_without_prompts(browser: object, served: str) -> None:
    """An API example (a doctest) copies as the code its ``>>>``/``...`` lines hold, without
    prompts or output; a terminal block copies its commands without ``$``."""
    import doctest

    tab = _Tab(browser, served, WIDE, permissions=["clipboard-read", "clipboard-write"])
    tab.open("reference/api/pytorch.html")
    blocks = tab.page.locator("article div.highlight").filter(has_text=">>> ")
    assert blocks.count() >= 2
    for i in range(2):
        block = blocks.nth(i)
        shown = block.locator("pre").inner_text()
        copied = _copy(tab, block)
        assert copied.strip(), "nothing was copied"
        assert not re.search(r"^(>>>|\.\.\.|\$) ", copied, re.M), copied
        examples = doctest.DocTestParser().get_examples(shown)
        assert examples, shown
        assert copied.rstrip("\n") == "".join(e.source for e in examples).rstrip("\n")
    tab.open("getting-started/first-schedule.html")
    block = tab.page.locator("article div.highlight-console").first
    shown = block.locator("pre").inner_text()
    commands = [line[2:] for line in shown.splitlines() if line.startswith("$ ")]
    assert commands
    assert _copy(tab, block).splitlines() == commands
    tab.close()


# -- search ----------------------------------------------------------------------------------------


def _search(tab: _Tab, query: str) -> list[tuple[str, str]]:
    """The search page's results for ``query``: (page, summary text) each."""
    page = tab.page
    tab.open(f"search.html?q={urllib.parse.quote(query)}")
    page.wait_for_function(  # the summary line comes when every result is shown
        "(document.querySelector('#search-results p.search-summary') || {}).innerText",
        timeout=30_000,
    )
    items = page.eval_on_selector_all(
        "#search-results ul.search li",
        "lis => lis.map(li => [li.querySelector('a').getAttribute('href'), li.innerText])",
    )
    return [(urllib.parse.urlsplit(href).path, text) for href, text in items]


def test_search_treats_warm_up_spellings_alike(browser: object, served: str, shots: Path) -> None:
    """ "warmup", "warm-up" and "warm up" find the same pages: among them the concept page and the
    tutorial, which write "warm-up", and the API pages, which write ``warmup``."""
    tab = _Tab(browser, served, WIDE)
    found = {q: {p for p, _ in _search(tab, q)} for q in ("warmup", "warm-up", "warm up")}
    tab.page.screenshot(path=str(shots / "search-warm-up.png"))
    for query, pages in found.items():
        for page in (
            "concepts/refinement.html",
            "getting-started/first-schedule.html",
            "reference/api/schedules.html",
        ):
            assert page in pages, f"searching {query!r} misses {page}"
    assert found["warmup"] == found["warm-up"] == found["warm up"], found
    tab.close()


def test_search_results_show_no_python_values(browser: object, served: str) -> None:
    """The results for the names in the evidence's ranking quote text, not printed tuples."""
    tab = _Tab(browser, served, WIDE)
    results = _search(tab, "pilot envelope")
    assert any(p.endswith("evidence/study-selection.html") for p, _ in results), results
    for page, text in results:
        assert not PYTHON_DUMP.search(text), f"{page}: {text}"
    tab.close()


# -- figures ---------------------------------------------------------------------------------------


def test_large_figures_open_at_full_size(browser: object, served: str, shots: Path) -> None:
    """A figure shown smaller than it is links to its file; the 19-panel grid opens at its natural
    size (4 panels a row, each at least 250 px wide); a strip (the 19-dataset gap plot) is shown
    at its natural size in a box that scrolls sideways with a visible scroll bar."""
    tab = _Tab(browser, served, WIDE)
    page = tab.page
    tab.open("evidence/convex.html")
    figures = page.eval_on_selector_all(
        "article img",
        """imgs => imgs.map(i => {
          const a = i.closest('a');
          return {src: i.currentSrc, natural: i.naturalWidth, shown: i.clientWidth,
                  href: a && a.href, cls: i.className,
                  box: a && [a.scrollWidth, a.clientWidth, getComputedStyle(a).overflowX,
                             a.offsetHeight - a.clientHeight]};
        })""",
    )
    assert len(figures) >= 8, figures
    for f in figures:
        name = f["src"].rsplit("/", 1)[-1]
        if f["natural"] > f["shown"] + 1:
            assert f["href"] and f["href"].endswith("/" + name), f"{name}: no full-size link: {f}"
        if "figure-strip" in f["cls"]:
            assert f["shown"] == f["natural"], f"{name}: a strip not at its natural size: {f}"
            scroll_width, client_width, overflow, bar = f["box"]
            assert scroll_width > client_width and overflow == "auto" and bar >= 4, f
    strips = [f for f in figures if "figure-strip" in f["cls"]]
    assert any("gaps_adam" in f["src"] for f in strips), "the gap plot is not shown as a strip"
    page.locator("article img.figure-strip").first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "figure-strip.png"))
    # the 19-panel grid: click it, and it opens at its natural size
    grid = page.locator("article img[src$='lr_sweeps_adam.png']")
    natural = grid.evaluate("i => i.naturalWidth")
    grid.click()
    page.wait_for_url("**/lr_sweeps_adam.png")
    # Chromium fits a figure taller than the window to it; a click shows it at its natural size
    if page.evaluate("document.images[0].width") < natural:
        page.locator("img").first.click()
    shown = page.evaluate("[document.images[0].naturalWidth, document.images[0].width]")
    assert shown == [natural, natural], f"opened at {shown[1]} px of {natural}"
    assert natural / 4 >= 250, f"panels {natural / 4:.0f} px wide"
    page.screenshot(path=str(shots / "figure-full-size.png"))
    tab.close()
