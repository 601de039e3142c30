"""f* from the float64 solver against scikit-learn's LogisticRegression optimum."""

from __future__ import annotations

import numpy as np
import pytest

from refinedlr_bench.logreg import accuracy, full_gradient, objective, solve_optimum

sklearn = pytest.importorskip("sklearn")


def _standardised(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X, y.astype(np.int64)


@pytest.mark.parametrize(("name", "lam"), [("iris", 1e-3), ("wine", 1e-2), ("iris", 1e-4)])
def test_fstar_matches_sklearn(name: str, lam: float) -> None:
    """sklearn minimises C * sum_i CE_i + ||W||^2 / 2 (intercepts unpenalised), i.e. our
    mean CE + (lam/2) ||W||^2 with C = 1 / (lam n)."""
    from sklearn.linear_model import LogisticRegression

    X, y = _standardised(name)
    n = X.shape[0]
    opt = solve_optimum(X, y, 3, l2=lam)
    assert opt.grad_norm < 1e-9
    np.testing.assert_allclose(
        np.linalg.norm(full_gradient(X, y, opt.weights, l2=lam)), 0, atol=1e-9
    )
    clf = LogisticRegression(C=1.0 / (lam * n), tol=1e-12, max_iter=100_000).fit(X, y)
    W_sk = np.vstack([clf.coef_.T, clf.intercept_[None, :]])
    f_sk = float(objective(X, y, W_sk, l2=lam))
    assert abs(f_sk - opt.value) <= 1e-6 * opt.value
    assert opt.value <= f_sk + 1e-15  # ours is at least as good
    scale = np.abs(opt.weights).max()
    np.testing.assert_allclose(W_sk[:-1], opt.weights[:-1], atol=1e-4 * scale)
    np.testing.assert_allclose(W_sk[-1] - W_sk[-1].mean(), opt.weights[-1], atol=1e-4 * scale)
    assert accuracy(X, y, opt.weights) == pytest.approx(clf.score(X, y))


def test_separable_data_have_an_attained_optimum() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(np.int64)  # linearly separable
    opt = solve_optimum(X, y, 2, l2=1e-4)
    assert opt.grad_norm < 1e-9 and 0 < opt.value < 0.1
    assert np.all(np.isfinite(opt.weights))
