"""Classifiers: the scikit-learn classifier contract, the losses' models (logistic
and softmax teachers recovered as n grows), and real data (digits)."""

import warnings

import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_sample_weight

from sktensorcnn import (
    CNNClassifier,
    ConvPoolGeometry,
    CPCNNClassifier,
    TuckerCNNClassifier,
    conv_pool_features,
    features_to_input_space,
)

COMMON = dict(kernel_size=3, pool_size=2)
GEOMETRY = ConvPoolGeometry.from_params((8, 8), **COMMON)


def _teacher(n, n_classes, seed, scale=3.0):
    """Samples of a linear CNN teacher with 2 shared kernels ([Compressed CNNs], App.
    A.4):
    binary labels ~ Bernoulli(sigmoid(f)), more classes ~ softmax(f)."""
    rng = np.random.default_rng(seed)
    n_out = 1 if n_classes == 2 else n_classes
    teacher_rng = np.random.default_rng(1234)
    A = teacher_rng.standard_normal((9, 2))
    B = teacher_rng.standard_normal((2, GEOMETRY.n_cells * n_out))
    W = (A @ B).reshape(9, GEOMETRY.n_cells, n_out)
    W *= scale / np.linalg.norm(W)
    X = rng.standard_normal((n, 8, 8))
    F = np.einsum("nf,fo->no", conv_pool_features(X, GEOMETRY).reshape(n, -1),
                  W.reshape(-1, n_out))
    if n_out == 1:
        y = (rng.uniform(size=n) < expit(F[:, 0])).astype(int)
    else:
        P = softmax(F, axis=1)
        y = (rng.uniform(size=(n, 1)) > np.cumsum(P, axis=1)).sum(axis=1)
    return X, y, W


def _fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kw)


@pytest.mark.parametrize("make", [
    lambda: CNNClassifier(n_kernels=2, **COMMON),
    lambda: TuckerCNNClassifier(ranks=(2, 2, 2), n_kernels=2, **COMMON),
    lambda: CPCNNClassifier(rank=2, **COMMON),
    lambda: CNNClassifier(n_kernels=2, activation="relu", max_iter=30, **COMMON),
], ids=["dense", "tucker", "cp", "relu"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_contract(make, n_classes):
    X, y, _ = _teacher(300, n_classes, seed=0)
    labels = np.array(["cat", "dog", "emu"])[:n_classes]
    est = _fit(make(), X, labels[y])
    np.testing.assert_array_equal(est.classes_, labels)
    proba = est.predict_proba(X)
    assert proba.shape == (300, n_classes)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.exp(est.predict_log_proba(X)), proba, atol=1e-12)
    predicted = est.predict(X)
    assert set(predicted) <= set(labels)
    np.testing.assert_array_equal(predicted, labels[np.argmax(proba, axis=1)])
    scores = est.decision_function(X)
    assert scores.shape == ((300,) if n_classes == 2 else (300, n_classes))
    assert est.score(X, labels[y]) == pytest.approx(np.mean(predicted == labels[y]))
    n_out = 1 if n_classes == 2 else n_classes
    assert est.fc_weights_.shape == (n_out, est.n_kernels_, *GEOMETRY.pooled_shape)
    assert est.intercept_.shape == (n_out,)
    if est.activation == "identity":  # linear: scores are <X, coef_> + intercept_
        direct = X.reshape(300, -1) @ est.coef_.reshape(n_out, -1).T + est.intercept_
        np.testing.assert_allclose(scores.reshape(300, -1), direct, atol=1e-10)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_relabelling_changes_only_the_labels(n_classes):
    X, y, _ = _teacher(300, n_classes, seed=1)
    names = np.array(["a", "b", "c", "d"])[:n_classes]  # same order as 0..M-1
    by_int = _fit(TuckerCNNClassifier(ranks=(2, 2, 2), **COMMON, random_state=0),
                  X, y + 10)
    by_str = _fit(TuckerCNNClassifier(ranks=(2, 2, 2), **COMMON, random_state=0),
                  X, names[y])
    np.testing.assert_allclose(by_int.decision_function(X),
                               by_str.decision_function(X), atol=1e-12)
    np.testing.assert_array_equal(names[by_int.predict(X) - 10], by_str.predict(X))


class _TwoOutputSoftmax(CNNClassifier):
    """Two classes through the multinomial machinery (two outputs)."""

    def _encode_targets(self, y, sample_weight, *, reset, classes=None):
        y, sample_weight = super()._encode_targets(y, sample_weight, reset=reset,
                                                   classes=classes)
        if reset:
            self._n_out = 2
        return y, sample_weight


def test_binary_and_two_class_softmax_agree():
    X, y, _ = _teacher(600, 2, seed=2, scale=1.5)
    kw = dict(n_kernels=2, alpha=0.0, max_iter=500, tol=1e-10, **COMMON)
    binary = _fit(CNNClassifier(**kw), X, y)
    softmax_fit = _fit(_TwoOutputSoftmax(**kw), X, y)
    assert softmax_fit.decision_function(X).shape == (600, 2)
    # softmax depends only on the difference of the two outputs: the log-odds
    difference = np.diff(softmax_fit.decision_function(X), axis=1)[:, 0]
    log_odds = binary.decision_function(X)
    # equal up to the solvers' tolerance
    np.testing.assert_allclose(difference, log_odds, atol=5e-3)
    clear = np.abs(log_odds) > 1e-2
    np.testing.assert_array_equal(softmax_fit.predict(X)[clear],
                                  binary.predict(X)[clear])
    np.testing.assert_allclose(softmax_fit.predict_proba(X),
                               binary.predict_proba(X), atol=2e-3)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_teacher_recovery_improves_with_n(n_classes):
    """Error of the input-space weights (identifiable, unlike ``W`` here: the
    kernel is longer than the pooling stride)."""
    errors = []
    for n in (400, 1600, 6400):
        X, y, W = _teacher(n, n_classes, seed=n)
        truth = np.stack([
            features_to_input_space(w.reshape(GEOMETRY.feature_shape), GEOMETRY)
            for w in np.moveaxis(W, -1, 0)
        ])
        est = _fit(CNNClassifier(n_kernels=2, alpha=0.0, max_iter=500, **COMMON,
                                 random_state=0), X, y)
        fitted = est.coef_
        if n_classes > 2:  # softmax: identifiable up to a shift shared by classes
            fitted = fitted - fitted.mean(axis=0)
            truth = truth - truth.mean(axis=0)
        errors.append(np.linalg.norm(fitted - truth) / np.linalg.norm(truth))
    assert errors[0] > errors[1] > errors[2]
    assert errors[0] / errors[2] > 2.5  # about sqrt(16) = 4 expected
    assert errors[2] < 0.15


def test_class_weight_equals_sample_weight():
    X, y, _ = _teacher(300, 3, seed=3)
    keep = (y != 2) | (np.arange(300) % 4 == 0)  # make class 2 rare
    X, y = X[keep], y[keep]
    balanced = _fit(CPCNNClassifier(rank=2, class_weight="balanced", **COMMON,
                                    random_state=0), X, y)
    weighted = _fit(CPCNNClassifier(rank=2, **COMMON, random_state=0), X, y,
                    sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_allclose(balanced.decision_function(X),
                               weighted.decision_function(X), atol=1e-8)
    as_dict = _fit(CPCNNClassifier(rank=2, class_weight={0: 1.0, 1: 1.0, 2: 5.0},
                                   **COMMON, random_state=0), X, y)
    weights = np.where(y == 2, 5.0, 1.0)
    direct = _fit(CPCNNClassifier(rank=2, **COMMON, random_state=0), X, y,
                  sample_weight=weights)
    np.testing.assert_allclose(as_dict.decision_function(X),
                               direct.decision_function(X), atol=1e-8)


def test_one_vs_rest():
    X, y, _ = _teacher(600, 3, seed=4)
    est = _fit(TuckerCNNClassifier(ranks=(2, 2, 2), multi_class="ovr", **COMMON,
                                   random_state=0), X, y)
    F = est.decision_function(X)
    expected = expit(F) / expit(F).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(est.predict_proba(X), expected, atol=1e-12)
    multinomial = _fit(TuckerCNNClassifier(ranks=(2, 2, 2), **COMMON,
                                           random_state=0), X, y)
    # both fit the same data well; their decisions mostly agree
    assert np.mean(est.predict(X) == multinomial.predict(X)) > 0.9


def test_partial_fit_and_early_stopping():
    X, y, _ = _teacher(400, 3, seed=5)
    labels = np.array(["x", "y", "z"])[y]
    est = CNNClassifier(n_kernels=2, activation="relu", solver="adam",
                        learning_rate_init=0.01, **COMMON, random_state=0)
    with pytest.raises(ValueError, match="classes must be given"):
        est.partial_fit(X[:100], labels[:100])
    est.partial_fit(X[:100], labels[:100], classes=["x", "y", "z"])
    for _ in range(5):
        est.partial_fit(X, labels)
    # epochs 2-6 see the same samples: their loss falls (epoch 1 saw only 100)
    assert len(est.loss_curve_) == 6 and est.loss_curve_[-1] < est.loss_curve_[1]
    with pytest.raises(ValueError, match="not in classes_"):
        est.partial_fit(X[:5], np.array(["x", "w", "z", "x", "y"]))
    stopped = _fit(CNNClassifier(n_kernels=2, activation="relu", solver="adam",
                                 early_stopping=True, n_iter_no_change=3,
                                 max_iter=50, **COMMON, random_state=0), X, labels)
    assert all(0 <= s <= 1 for s in stopped.validation_scores_)
    assert stopped.best_validation_score_ == max(stopped.validation_scores_)


def test_classifier_errors():
    X, y, _ = _teacher(50, 2, seed=6)
    with pytest.raises(ValueError, match="at least 2 classes; got 1 class"):
        CNNClassifier(**COMMON).fit(X, np.zeros(50))
    with pytest.raises(ValueError, match="solver='als' fits the linear network "
                                         "with the squared loss only"):
        CNNClassifier(solver="als", **COMMON).fit(X, y)
    with pytest.raises(ValueError, match="Unknown label type"):
        CNNClassifier(**COMMON).fit(X, np.linspace(0, 1, 50))
    est = CNNClassifier(class_weight="balanced", solver="adam", **COMMON)
    est.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="cannot be used with partial_fit"):
        est.partial_fit(X, y)


def test_multiclass_parameter_counts():
    X, y, _ = _teacher(200, 3, seed=7)
    est = _fit(TuckerCNNClassifier(ranks=(2, 2, 2), n_kernels=3, **COMMON), X, y)
    L, P, M = 9, GEOMETRY.n_cells, 3
    # Tucker d_M with P replaced by M P ([Compressed CNNs], App. A.4)
    assert est.model_complexity_ == 8 + 3 * 2 + 3 * 2 + 2 * M * P
    kernel_params = 8 + 3 * 2 + 3 * 2 + 3 * 2  # core, H_1, H_2, H_K
    assert est.n_params_ == kernel_params + 3 * P * M + M
    dense = _fit(CNNClassifier(n_kernels=2, **COMMON), X, y)
    assert dense.model_complexity_ == 2 * (M * P + L + 1)


def test_digits_beats_logistic_regression_with_fewer_parameters():
    """The issue's real-data check: 8x8 digits, held-out accuracy >= 97% with
    fewer parameters than logistic regression on the 64 pixels."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X.reshape(-1, 8, 8) / 16.0, y, test_size=0.3, random_state=0, stratify=y)
    est = _fit(CNNClassifier(n_kernels=8, kernel_size=3, pool_size=3,
                             activation="relu", random_state=0), X_train, y_train)
    logistic = LogisticRegression(max_iter=2000).fit(X_train.reshape(-1, 64),
                                                     y_train)
    lr_params = logistic.coef_.size + logistic.intercept_.size
    assert est.score(X_test, y_test) >= 0.97
    assert est.n_params_ < lr_params
