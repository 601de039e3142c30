"""The refinedlr docs' own Sphinx extension: reference content generated from the library.

Directives (usable from Markdown as ```` ```{name} ```` blocks):

``cli-help [COMMAND]``
    ``refinedlr [COMMAND] --help`` exactly as a terminal 90 columns wide shows it, rendered from
    :func:`refinedlr.cli.build_parser` at build time. The build fails (a warning, strict mode) when
    a command of the parser has no ``cli-help`` block anywhere, so a new command cannot be missing
    from the CLI reference.
``schedule-names``
    The table of every accepted schedule name, from :func:`refinedlr.registry.schedule_names`.
``top-level-names``
    The names importable from ``refinedlr`` itself (``refinedlr.__all__``), each linked to the
    page that documents it.

Events:

``autodoc-process-docstring``
    A constant a package re-exports (``refinedlr.records.STEP_NAMES``, defined in
    ``refinedlr.records.steps``) gets the ``#:`` comment of its defining module (the reference
    page lists it with ``autodata``).
``missing-reference``
    Resolves a qualified refinedlr name written in a docstring to the one place the reference
    documents it. Objects are documented where users import them from (``refinedlr.pytorch``,
    not ``refinedlr.pytorch.scheduler``), while type hints and some docstrings name the defining
    module or the top-level re-export (``refinedlr.refine``). Only unambiguous matches resolve;
    anything else stays a warning, which strict mode turns into an error.
``env-updated``
    Drops viewcode's links from a source page back to an entry that has another anchor (see
    :func:`_drop_broken_source_backlinks`); the internal-link test would catch them.
``include-read``
    The evidence pages ``{include}`` the committed reports of the research suite. A report's
    links to another report (``[...](image/report.md)``) are rewritten to the page that includes
    that report, so they stay internal links that the build checks; links to its figures become
    the figures themselves; links to other files become downloads. Python values a report prints
    in its code blocks (``('pilot-envelope-0.25', 7, -0.02823175128177348)``) are shown as text
    columns (``pilot-envelope-0.25  7  -0.0282``), so neither the pages nor the search results
    show raw tuples. Issue numbers in headings ("Reproducibility (issue 10)") are dropped. An
    evidence page gives the report its own, user-facing title by starting the
    include after the report's title (``:start-line: 1``); the build fails if that line is not
    the report's title.

Post-transforms and search:

figures
    Every figure links to its file at full size (click to open it; the 19-panel grids of the
    convex report are unreadable at page width). A figure much wider than tall (a strip such as
    the convex report's 19-dataset gap plot) is shown at its natural size in a box that scrolls
    sideways, like a wide code block.
search
    The English search index also holds every hyphenated word joined (``warm-up`` is found by
    ``warmup``), and each compound of ``html_search_options["compounds"]`` in all three
    spellings (``warm-up``, ``warmup``, ``warm up``), so the query finds the page whichever
    spelling either uses. The browser's search stems and splits the query itself: ``warm-up``
    and ``warm up`` become ``warm`` (``up`` is a stop word), ``warmup`` stays ``warmup``; both are
    in the index of every page with any spelling.
"""

from __future__ import annotations

import ast
import functools
import os
import posixpath
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.search.en import SearchEnglish
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import make_refnode
from sphinx.util.osutil import relative_uri

logger = logging.getLogger(__name__)

HELP_COLUMNS = 90  # argparse wraps at COLUMNS - 2: lines of at most 88 characters fit the page

# -- helpers ---------------------------------------------------------------------------------------


def _table(
    header: list[str], rows: Iterable[list[nodes.Node | str]], widths: list[int]
) -> nodes.table:
    table = nodes.table(classes=["refinedlr-generated"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for w in widths:
        group += nodes.colspec(colwidth=w)

    def row(cells: Iterable[nodes.Node | str]) -> nodes.row:
        r = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            para = nodes.paragraph()
            para += nodes.Text(cell) if isinstance(cell, str) else cell
            entry += para
            r += entry
        return r

    thead = nodes.thead()
    thead += row(header)
    group += thead
    body = nodes.tbody()
    for cells in rows:
        body += row(cells)
    group += body
    return table


def _py_ref(target: str, text: str, reftype: str = "obj") -> addnodes.pending_xref:
    ref = addnodes.pending_xref(
        "", refdomain="py", reftype=reftype, reftarget=target, refexplicit=True, refwarn=True
    )
    ref += nodes.literal(text, text)
    return ref


def _inline_code(text: str) -> nodes.Node:
    """A cell text where ``code`` spans (Markdown or reST) and reST roles become literals."""
    text = re.sub(r":[\w:]+:`[~.]*([^`<]+?)(?:\s*<[^>]*>)?`", r"``\1``", text)
    para = nodes.inline()
    for i, part in enumerate(re.split(r"`+([^`]*)`+", text)):
        if part:
            para += nodes.literal(part, part) if i % 2 else nodes.Text(part)
    return para


def _codes(names: Iterable[str]) -> nodes.Node:
    out = nodes.inline()
    for i, name in enumerate(names):
        if i:
            out += nodes.Text(", ")
        out += nodes.literal(name, name)
    return out


# -- cli-help --------------------------------------------------------------------------------------


def _parser_and_commands() -> tuple[Any, dict[str, Any]]:
    import argparse

    from refinedlr.cli import build_parser

    parser = build_parser()
    commands: dict[str, Any] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            commands.update(action.choices)
    return parser, commands


def _plugin_parsers() -> dict[str, Any]:
    """The ``build_parser`` of each installed plugin command whose module has one (the demo's)."""
    import importlib
    from importlib.metadata import entry_points

    found = {}
    for ep in entry_points(group="refinedlr.commands"):
        build = getattr(importlib.import_module(ep.module), "build_parser", None)
        if build is not None:
            found[ep.name] = build
    return found


def render_help(command: str | None) -> str:
    """``refinedlr [command] --help`` at a fixed width, without colour."""
    parser, commands = _parser_and_commands()
    own_parsers = _plugin_parsers()
    if command is not None and command not in commands:
        raise ValueError(f"refinedlr has no command {command!r} (commands: {', '.join(commands)})")
    saved = {k: os.environ.get(k) for k in ("COLUMNS", "NO_COLOR", "PYTHON_COLORS")}
    os.environ.update(COLUMNS=str(HELP_COLUMNS), NO_COLOR="1", PYTHON_COLORS="0")
    try:
        text = (commands[command] if command else parser).format_help()
        if command in own_parsers:  # a plugin with a parser of its own: its own help
            text = own_parsers[command]().format_help()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return re.sub(r"\x1b\[[0-9;]*m", "", text).rstrip() + "\n"


class CliHelp(SphinxDirective):
    """``refinedlr [COMMAND] --help``, generated from the parser."""

    optional_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        command = self.arguments[0] if self.arguments else None
        try:
            text = render_help(command)
        except ValueError as exc:
            raise self.error(str(exc)) from exc
        rendered: dict[str, set[str]] = self.env.refinedlr_cli_rendered  # type: ignore[attr-defined]
        rendered.setdefault(self.env.docname, set()).add(command or "")
        block = nodes.literal_block(text, text, language="text")
        block["classes"].append("cli-help")
        return [block]


def _check_cli_complete(app: Sphinx, env: BuildEnvironment) -> None:
    rendered: set[str] = set()
    for names in env.refinedlr_cli_rendered.values():  # type: ignore[attr-defined]
        rendered |= names
    if not rendered:
        return
    _, commands = _parser_and_commands()
    for name in ["", *commands]:
        if name not in rendered:
            logger.warning(
                "CLI reference: `refinedlr %s--help` is not rendered by any cli-help block",
                f"{name} " if name else "",
            )


def _init_env(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    if not hasattr(env, "refinedlr_cli_rendered"):
        env.refinedlr_cli_rendered = {}  # type: ignore[attr-defined]


def _purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    getattr(env, "refinedlr_cli_rendered", {}).pop(docname, None)


def _merge(app: Sphinx, env: BuildEnvironment, docnames: Any, other: BuildEnvironment) -> None:
    env.refinedlr_cli_rendered.update(other.refinedlr_cli_rendered)  # type: ignore[attr-defined]


# -- schedule-names and top-level-names ------------------------------------------------------------


class ScheduleNames(SphinxDirective):
    """Every name :func:`refinedlr.get_schedule` accepts, from the registry itself."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from refinedlr.registry import schedule_names

        rows: list[list[nodes.Node | str]] = []
        for entry in schedule_names():
            cls = entry.cls
            accepted = sorted(set(entry.accepted()) - set(entry.fields()))
            required = "; ".join("one of " + ", ".join(group) for group in entry.required)
            args = nodes.inline()
            args += _codes(entry.fields())
            if accepted:
                args += nodes.Text("; also ")
                args += _codes(accepted)
            if required:
                args += nodes.Text(f" (required: {required})")
            name = nodes.inline()
            name += _codes([entry.name])
            if entry.aliases:
                name += nodes.Text(" (also ")
                name += _codes(entry.aliases)
                name += nodes.Text(")")
            builds = nodes.inline()
            builds += _py_ref(f"{cls.__module__}.{cls.__name__}", cls.__name__, "class")
            builds += nodes.Text(f"; {entry.origin}")
            rows.append([name, builds, _inline_code(entry.summary), args])
        header = ["name", "class; origin", "what it is", "parameters"]
        return [_table(header, rows, [20, 20, 35, 25])]


class TopLevelNames(SphinxDirective):
    """``refinedlr.__all__``: each name, what it is, and where it is documented."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        import inspect

        import refinedlr

        rows: list[list[nodes.Node | str]] = []
        for name in refinedlr.__all__:
            if name.startswith("__"):
                continue
            obj = getattr(refinedlr, name)
            if inspect.isclass(obj) or inspect.isroutine(obj):
                doc = inspect.getdoc(obj) or ""
                module = obj.__module__
            else:  # a constant: its ``#:`` comment in the module that defines it
                module, doc = _constant_doc(name)
            first = doc.strip().split("\n\n")[0].replace("\n", " ")
            rows.append([_py_ref(f"{module}.{name}", name), _inline_code(first)])
        return [_table(["name", "what it is"], rows, [25, 75])]


def _constant_doc(name: str) -> tuple[str, str]:
    """The top-level module that documents constant ``name`` with ``#:``, and that text."""
    import pkgutil

    from sphinx.pycode import ModuleAnalyzer

    import refinedlr

    for info in pkgutil.iter_modules(refinedlr.__path__, "refinedlr."):
        if info.name.endswith("__main__"):
            continue  # analysing a module imports it; a __main__ would run the program
        try:
            docs = ModuleAnalyzer.for_module(info.name).find_attr_docs()
        except Exception:
            continue
        if ("", name) in docs:
            return info.name, " ".join(docs[("", name)]).strip()
    return "refinedlr", ""


# -- constants a package re-exports ---------------------------------------------------------------


@functools.cache
def _package_constants() -> dict[str, tuple[object, list[str]]]:
    """``{"refinedlr.records.STEP_NAMES": (value, comment lines)}`` for every constant a package
    of the library lists in ``__all__`` and documents with ``#:`` in the submodule defining it.
    autodoc looks for that comment only in the package itself (and lists such a constant only
    with an explicit ``autodata``, which then gets the comment from here)."""
    import importlib
    import pkgutil

    from sphinx.pycode import ModuleAnalyzer

    import refinedlr

    out: dict[str, tuple[object, list[str]]] = {}
    packages = ["refinedlr"] + [
        info.name
        for info in pkgutil.walk_packages(refinedlr.__path__, "refinedlr.", onerror=lambda n: None)
        if info.ispkg
    ]
    for package_name in packages:
        try:
            package = importlib.import_module(package_name)
        except ImportError:
            continue
        for info in pkgutil.iter_modules(package.__path__, package_name + "."):
            if info.name.endswith("__main__"):
                continue  # analysing a module imports it; a __main__ would run the program
            try:
                docs = ModuleAnalyzer.for_module(info.name).find_attr_docs()
            except Exception:
                continue
            for (namespace, name), lines in docs.items():
                if namespace == "" and name in getattr(package, "__all__", ()):
                    out[f"{package_name}.{name}"] = (getattr(package, name), list(lines))
    return out


def _package_constant_doc(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what == "data" and name in _package_constants():
        # autodoc found no comment in the package, so it used the value's type's docstring
        lines[:] = list(_package_constants()[name][1])


# -- references ------------------------------------------------------------------------------------

_MODULE_LEVEL = {"function", "class", "exception", "data"}


def _resolve_refinedlr(
    app: Sphinx, env: BuildEnvironment, node: addnodes.pending_xref, contnode: nodes.Element
) -> nodes.Node | None:
    if node.get("refdomain") != "py":
        return None
    target: str = node["reftarget"].lstrip("~.")
    parts = target.split(".")
    domain: Any = env.get_domain("py")
    if node["reftype"] == "mod" and target not in domain.modules:
        # an implementation module named in a docstring (``:mod:`.steps```): real, but not a
        # page of the reference; shown as code, not as a link
        import importlib.util

        module = node.get("py:module") or ""
        for name in (f"{module}.{target}", target):
            try:
                if name.startswith("refinedlr.") and importlib.util.find_spec(name) is not None:
                    return contnode
            except ImportError:
                continue
        return None
    allowed = set(domain.objtypes_for_role(node["reftype"]) or [])
    objects = {
        name: entry
        for name, entry in domain.objects.items()
        if name.startswith("refinedlr") and entry.objtype in allowed and not entry.aliased
    }
    # qualified names (a dot, or the package's own prefix) match by their longest known tail;
    # a bare name only when it is a module-level object documented exactly once
    tails = range(len(parts), 0, -1) if len(parts) > 1 else [1]
    for k in tails:
        tail = ".".join(parts[-k:])
        found = [n for n in objects if n == tail or n.endswith("." + tail)]
        if k == 1 and len(parts) == 1:
            found = [n for n in found if objects[n].objtype in _MODULE_LEVEL]
        if len(found) > 1:
            module = node.get("py:module") or ""
            found = [n for n in found if module and n.startswith(module.rsplit(".", 1)[0] + ".")]
        if len(found) == 1:
            entry = objects[found[0]]
            return make_refnode(
                app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, found[0]
            )
        if found:
            return None
    return None


# -- napoleon and prose ---------------------------------------------------------------------------

_TYPE_LIKE = re.compile(r"[\[\]|`]")
_PROSE = re.compile(r"[A-Za-z]{2,} [a-z]{2,}")


def _undo_prose_type(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Napoleon reads ``"text: more text"`` as ``"type: description"`` in the docstring of a
    property, attribute or constant (Google style's inline type). refinedlr's docstrings write
    prose there ("Number of steps the record spans: last step + 1"); put such a line back
    together (runs after napoleon)."""
    if what not in ("attribute", "data", "property"):
        return
    for i, line in enumerate(lines):
        if not line.startswith(":type: "):
            continue
        kind = line[len(":type: ") :]
        if _TYPE_LIKE.search(kind) or not _PROSE.search(kind):
            return
        del lines[i]
        if i and not lines[i - 1].strip():
            del lines[i - 1]
        for j, text in enumerate(lines):
            if text.strip():
                lines[j] = f"{kind}: {text}"
                break
        else:
            lines.insert(0, kind)
        return


# -- the evidence reports --------------------------------------------------------------------------

_INCLUDE = re.compile(r"^(`{3,}|:{3,})\{include\}\s+(\S+)\s*\n(.*?)^\1\s*$", re.M | re.S)
# a part of a report (``:start-line: 1`` alone drops only its title: the page shows all the rest)
_PARTIAL = re.compile(r"^:(start-after|end-before|end-line):|^:start-line:(?!\s*1\s*$)", re.M)
_RETITLED = re.compile(r"^:start-line:\s*1\s*$", re.M)
# a Markdown link (not an image): [text](target) with a relative target
_FIGURES = {".png", ".svg", ".jpg", ".jpeg", ".gif"}
_LINK = re.compile(r"(?<!!)(\[[^\]\n]*\])\(([^)\s#:]+)(#[^)\s]*)?\)")


def _included_reports(app: Sphinx) -> dict[Path, str]:
    """Every Markdown file a page includes whole, resolved, mapped to that page's docname."""
    return {path: docname for path, (docname, _) in _whole_includes(app).items()}


def _whole_includes(app: Sphinx) -> dict[Path, tuple[str, bool]]:
    """Every Markdown file a page includes whole: that page, and whether it drops the file's
    title (``:start-line: 1``) to give its own."""
    src = Path(app.srcdir)
    out: dict[Path, tuple[str, bool]] = {}
    for page in src.rglob("*.md"):
        if "_build" in page.parts:
            continue
        docname = page.relative_to(src).with_suffix("").as_posix()
        for match in _INCLUDE.finditer(page.read_text(encoding="utf-8")):
            if not _PARTIAL.search(match.group(3)):  # the page that shows the whole file
                retitled = bool(_RETITLED.search(match.group(3)))
                out[(page.parent / match.group(2)).resolve()] = (docname, retitled)
    return out


def _rewrite_report_links(
    app: Sphinx, relative_path: Path, parent_docname: str, content: list[str]
) -> None:
    """Links in an included report, relative to the report, made relative to the page."""
    if relative_path.suffix != ".md":
        return
    included = Path(app.srcdir, relative_path).resolve()
    pages = _included_reports(app)
    # the page being read (MyST passes only the stem of its name as parent_docname)
    page_dir = Path(app.srcdir, app.env.docname).parent

    def link(m: re.Match[str]) -> str:
        if Path(m.group(2)).suffix.lower() in _FIGURES:  # a linked figure: show it
            return f"!{m.group(1)}({m.group(2)})"  # (relative-images makes the path the page's)
        target = (included.parent / m.group(2)).resolve()
        if target in pages:  # another report: the page that shows it
            target = Path(app.srcdir, pages[target] + ".md")
        rel = Path(os.path.relpath(target, page_dir)).as_posix()
        return f"{m.group(1)}({rel}{m.group(3) or ''})"

    content[0] = _LINK.sub(link, content[0])
    content[0] = _FENCED.sub(_readable_values, content[0])
    # the project's issue numbers are not for readers: "## Reproducibility (issue 10)"
    content[0] = _ISSUE_IN_HEADING.sub(r"\1", content[0])
    # a page that retitles the report drops its first line: that line must be the title
    docname, retitled = _whole_includes(app).get(included, ("", False))
    if retitled and docname == app.env.docname and not content[0].startswith("# "):
        first = content[0].split("\n", 1)[0]
        logger.warning(
            "%s: the page drops the first line of %s (:start-line: 1) to give its own title, "
            "but that line is not the report's title: %r",
            docname,
            relative_path.as_posix(),
            first[:80],
            location=docname,
        )


_ISSUE_IN_HEADING = re.compile(r"^(#{1,6} .*?)\s*\((?:issues? [\d, and]+)\)", re.M)
# a fenced code block of a Markdown report
_FENCED = re.compile(
    r"^(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S
)


def _scalar_text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


def _python_value(line: str) -> tuple[str, object] | None:
    """``(text before, value)`` when ``line`` ends in a Python tuple or list that holds text or
    floats (a report that printed Python values), else None."""
    for m in re.finditer(r"[(\[]", line):
        start = m.start()
        if start and not line[start - 1].isspace():
            continue
        try:
            value = ast.literal_eval(line[start:].strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, (tuple, list)) and value and _dump_like(value):
            return line[:start].rstrip(), value
    return None


def _dump_like(value: object) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_dump_like(v) or isinstance(v, (int, float, str)) for v in value) and any(
            isinstance(v, (str, float, tuple, list)) for v in value
        )
    return False


def _readable_values(m: re.Match[str]) -> str:
    """A code block's lines of Python values as text: a run of tuple lines becomes aligned
    columns, a list becomes its items separated by commas (tuples in it by semicolons), floats
    get 4 decimals."""
    out: list[str] = []
    rows: list[list[str]] = []

    def flush() -> None:
        if not rows:
            return
        widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
        for r in rows:
            cells = [
                c.rjust(w) if re.fullmatch(r"[-+\d.e]+", c) else c.ljust(w)
                for c, w in zip(r, widths, strict=False)
            ]
            out.append("  ".join(cells).rstrip())
        rows.clear()

    for line in m.group("body").split("\n"):
        found = _python_value(line)
        if found is None:
            flush()
            out.append(line)
            continue
        before, value = found
        if (
            not before
            and isinstance(value, tuple)
            and not any(isinstance(v, (tuple, list)) for v in value)
        ):
            rows.append([_scalar_text(v) for v in value])
            continue
        flush()
        items = value if isinstance(value, list) else [value]
        nested = any(isinstance(v, (tuple, list)) for v in items)
        text = ("; " if nested else ", ").join(
            " ".join(_scalar_text(x) for x in v)
            if isinstance(v, (tuple, list))
            else _scalar_text(v)
            for v in items
        )
        sep = " " if before.endswith(":") else ": "
        out.append(f"{before}{sep}{text}" if before else text)
    flush()
    return f"{m.group('fence')}{m.group('info')}\n" + "\n".join(out) + m.group("fence")


# -- viewcode --------------------------------------------------------------------------------------


def _drop_broken_source_backlinks(app: Sphinx, env: BuildEnvironment) -> None:
    """viewcode links each object of a source page back to its entry as ``<refname>.<name>``,
    with one ``refname`` per source module: the module name under which its first object was
    documented. A source module whose objects are documented under two names
    (``refinedlr.records.GradNormRecord``, ``refinedlr.records.record.NormKindWarning``) would
    get backlinks to anchors that do not exist; drop those (the entry keeps its source link)."""
    objects = env.get_domain("py").objects  # type: ignore[attr-defined]
    dropped: set[tuple[str, str]] = set()
    for modname, entry in getattr(env, "_viewcode_modules", {}).items():
        if not entry:
            continue
        _code, _tags, used, refname = entry
        for name in list(used):
            if f"{refname}.{name}" not in objects:
                del used[name]
                dropped.add((modname, name))
    env.refinedlr_viewcode_dropped = dropped  # type: ignore[attr-defined]


class _DropSourceLinks(SphinxPostTransform):
    """The ``[source]`` links of those entries go too: their source page has no anchor for them
    (runs before viewcode turns its anchors into links)."""

    default_priority = 90

    def run(self, **kwargs: Any) -> None:
        from sphinx.ext.viewcode import OUTPUT_DIRNAME, viewcode_anchor

        dropped = getattr(self.env, "refinedlr_viewcode_dropped", set())
        for node in list(self.document.findall(viewcode_anchor)):
            page = str(node["reftarget"]).removeprefix(OUTPUT_DIRNAME + "/")
            if (page.replace("/", "."), node["refid"]) in dropped:
                node.parent.remove(node)


# -- figures -------------------------------------------------------------------------------------

WIDE_FIGURE = 3.0  # width / height above which a figure is a strip, shown at its natural size


class _FiguresFullSize(SphinxPostTransform):
    """Each figure links to its own file (Sphinx does this only for figures given a size); a
    strip (much wider than tall) gets the class ``figure-strip``: the stylesheet shows it at its
    natural size in a box that scrolls sideways."""

    default_priority = 200
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        import imagesize

        builder = self.app.builder
        imagedir = getattr(builder, "imagedir", "_images")
        imgpath = relative_uri(builder.get_target_uri(self.env.docname), imagedir)
        for node in list(self.document.findall(nodes.image)):
            uri = node["uri"]
            if isinstance(node.parent, nodes.reference) or uri not in self.env.images:
                continue  # already a link, or not a file of the site (external)
            width, height = imagesize.get(os.path.join(self.env.srcdir, uri))
            classes = ["figure-full-size"]
            if width > 0 and height > 0 and width / height > WIDE_FIGURE:
                node["classes"].append("figure-strip")
                classes.append("figure-strip-box")
            ref = nodes.reference(
                "",
                "",
                internal=True,
                refuri=posixpath.join(imgpath, self.env.images[uri][1]),
                classes=classes,
                reftitle="open the figure at full size",
            )
            node.replace_self(ref)
            ref += node


# -- search ----------------------------------------------------------------------------------------

_HYPHENATED = re.compile(r"(?<![\w-])[^\W\d_]+(?:-[^\W\d_]+)+(?![\w-])")


class SearchEnglishCompounds(SearchEnglish):
    """English search, with hyphenated words also indexed joined (``warm-up``: ``warmup``) and
    the compounds of ``html_search_options["compounds"]`` indexed in every spelling."""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.compounds: list[tuple[re.Pattern[str], list[str]]] = []
        for compound in options.get("compounds", []):
            parts = compound.lower().split("-")
            # "warm-up", "warm up", "warmup", also inside names such as warmup_steps
            spelled = r"[-\s]?".join(map(re.escape, parts))
            pattern = re.compile(rf"(?<![^\W_]){spelled}(?![^\W_])", re.I)
            self.compounds.append((pattern, ["".join(parts), *parts]))

    def split(self, input: str) -> list[str]:
        words = super().split(input)
        words += [w.replace("-", "") for w in _HYPHENATED.findall(input)]
        for pattern, spellings in self.compounds:
            if pattern.search(input):
                words += spellings
        return words


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("cli-help", CliHelp)
    app.add_directive("schedule-names", ScheduleNames)
    app.add_directive("top-level-names", TopLevelNames)
    app.connect("env-before-read-docs", _init_env)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-check-consistency", _check_cli_complete)
    app.connect("missing-reference", _resolve_refinedlr)
    app.connect("autodoc-process-docstring", _undo_prose_type, priority=600)
    app.connect("autodoc-process-docstring", _package_constant_doc)
    app.connect("include-read", _rewrite_report_links)
    app.connect("env-updated", _drop_broken_source_backlinks)
    app.add_post_transform(_DropSourceLinks)
    app.add_post_transform(_FiguresFullSize)
    app.add_search_language(SearchEnglishCompounds)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
