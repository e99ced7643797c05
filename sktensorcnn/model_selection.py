"""Choosing ranks: a cross-validated rank path, information criteria, and the
energy of the unconstrained fit's truncated HOSVD.

Which to use:

* :class:`RankPathCV` (or ``GridSearchCV`` over ``ranks`` / ``rank`` /
  ``n_kernels``): the default; it measures what a user cares about, held-out
  prediction, and assumes nothing about the noise.  It costs a fit per candidate
  and fold; the path shares each fold's sufficient statistics across candidates
  and warm-starts each candidate from the previous one, so it is several times
  faster than the plain grid search on the linear models.
* :func:`information_criterion` (AIC / BIC with ``d_M`` of [Compressed CNNs] as the
  number of parameters): one fit per candidate on all the data.  BIC is
  consistent (picks the true ranks as ``n`` grows) when the model is right and
  the noise Gaussian; AIC favours prediction and tends to pick larger ranks.
  Prefer them when data are too few to hold any out, or fits too slow for CV.
* :func:`energy_ranks` / :func:`suggest_ranks`: the smallest Tucker ranks keeping
  a share of the energy of the unconstrained (ridge) fit's weight, mode by mode
  ([Rank reduction]'s rank reduction).  One linear fit in all; needs ``n`` well above
  ``L P`` for the unconstrained fit to be stable.  A quick upper bound or a start
  for a path, not a final answer: noise spreads energy over all ranks.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorly as tl
from sklearn.base import (
    BaseEstimator,
    MetaEstimatorMixin,
    _fit_context,
    clone,
    is_classifier,
)
from sklearn.linear_model import RidgeCV
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.validation import check_is_fitted

from ._dask import is_dask_array
from .features import conv_pool_features
from .kernel_structures import CPKernels, DenseKernels, TuckerKernels

__all__ = ["RankPathCV", "energy_ranks", "information_criterion", "suggest_ranks"]


def information_criterion(estimator, X, y, criterion: str = "bic",
                          sample_weight=None) -> float:
    """AIC or BIC of a fitted estimator on ``(X, y)``; lower is better.

    ``-2 log-likelihood + penalty * d``, with ``d = d_M`` (``model_complexity_``,
    [Compressed CNNs]) plus one per intercept, and penalty 2 (AIC) or ``log n`` (BIC).
    Regressors: Gaussian likelihood with the noise variance profiled out,
    ``n log(RSS / n)``.  Classifiers: the log-loss of ``predict_proba``.

    Parameters
    ----------
    estimator : fitted sktensorcnn estimator
    X : array-like of shape (n_samples, ...)
    y : array-like of shape (n_samples,)
    criterion : {'aic', 'bic'}, default='bic'
    sample_weight : array-like of shape (n_samples,), default=None
        Weights, normalized to sum to ``n``.

    Returns
    -------
    float
    """
    if criterion not in ("aic", "bic"):
        raise ValueError(f"criterion={criterion!r}; use 'aic' or 'bic'.")
    check_is_fitted(estimator)
    y = np.asarray(y)
    n = y.shape[0]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    w = w * (n / w.sum())
    if is_classifier(estimator):
        proba = estimator.predict_proba(X)
        codes = np.searchsorted(estimator.classes_, y)
        fit_term = -2.0 * float(w @ np.log(np.clip(proba[np.arange(n), codes],
                                                   1e-300, None)))
        n_out = proba.shape[1] if proba.shape[1] > 2 else 1
    else:
        residual = y.astype(float) - estimator.predict(X)
        fit_term = n * np.log(max(float(w @ residual**2) / n, 1e-300))
        n_out = 1
    d = estimator.model_complexity_ + n_out * int(estimator.fit_intercept)
    penalty = 2.0 if criterion == "aic" else np.log(n)
    return float(fit_term + penalty * d)


def energy_ranks(weight, energy: float = 0.9) -> tuple[int, ...]:
    """Per mode, the smallest rank whose leading singular values of the mode
    unfolding keep ``energy`` of ``||weight||^2`` (truncated HOSVD).

    Parameters
    ----------
    weight : ndarray
        E.g. an unconstrained fit's ``weight_`` ``(l_1, ..., l_N, [C], P)``: the
        ranks are then Tucker ranks ``(R_1, ..., R_N, [R_C], R_{N+1})``.
    energy : float in (0, 1], default=0.9

    Returns
    -------
    tuple of int
    """
    if not 0 < energy <= 1:
        raise ValueError(f"energy={energy} must be in (0, 1].")
    weight = np.asarray(weight, dtype=float)
    ranks = []
    for mode in range(weight.ndim):
        s = np.linalg.svd(tl.unfold(weight, mode), compute_uv=False)
        share = np.cumsum(s**2) / max(np.sum(s**2), 1e-300)
        ranks.append(int(np.searchsorted(share, energy - 1e-12) + 1))
    return tuple(ranks)


def suggest_ranks(estimator, X, y, energy: float = 0.9,
                  sample_weight=None) -> tuple[int, ...]:
    """:func:`energy_ranks` of the unconstrained linear CNN with ``estimator``'s
    layer: ``RidgeCV`` on the conv-pool features ([Rank reduction]'s rank reduction).

    Parameters
    ----------
    estimator : sktensorcnn regressor (unfitted is fine)
        Only its layer parameters are used.
    X, y : training data
    energy : float, default=0.9
    sample_weight : array-like of shape (n_samples,), default=None

    Returns
    -------
    tuple of int
        Tucker ranks ``(R_1, ..., R_N, [R_C], R_{N+1})``.
    """
    est = clone(estimator)
    est._validate_params()
    Xv = est._validate_X(X, reset=True)
    geometry = est._make_geometry(Xv.shape[1:])
    Z = conv_pool_features(Xv, geometry).reshape(Xv.shape[0], -1)
    ridge = RidgeCV(alphas=np.logspace(-4, 4, 17)).fit(Z, y, sample_weight)
    return energy_ranks(ridge.coef_.reshape(geometry.weight_shape), energy)


def _path_parameter(estimator) -> str:
    if isinstance(estimator, TuckerKernels):
        return "ranks"
    if isinstance(estimator, CPKernels):
        return "rank"
    if isinstance(estimator, DenseKernels):
        return "n_kernels"
    raise TypeError(
        f"RankPathCV takes a sktensorcnn estimator (Tucker, CP or dense kernels); "
        f"got {type(estimator).__name__}."
    )


class RankPathCV(MetaEstimatorMixin, BaseEstimator):
    """Cross-validated choice of ranks along a path, with shared statistics and
    warm starts.

    For each fold, the candidates of ``path`` are fitted in order: with the
    identity activation and the squared loss, the fold's sufficient statistics
    (``Z^T Z``, ``Z^T y``) and its ridge solution are computed once and shared,
    and each candidate starts from the previous candidate's weight (padded or
    truncated by HOSVD) and from the spectral start; with ``n_init='auto'`` these
    two replace the random restarts after the first candidate.  Other estimators
    are fitted plainly.  The candidate with the best mean held-out score is
    refitted on all the data.

    Parameters
    ----------
    estimator : sktensorcnn estimator
        Its ``ranks`` (Tucker), ``rank`` (CP) or ``n_kernels`` (dense) walks the
        path; the other parameters are kept.
    path : list
        Candidate values, in the order they are walked (small to large is
        usually best for warm starts).
    cv : int, cross-validation generator or iterable, default=5
        As in ``GridSearchCV``.
    scoring : str or callable, default=None
        As in ``GridSearchCV``; ``None`` is the estimator's ``score``.
    refit : bool, default=True
        Refit the best candidate on all the data (``best_estimator_``).

    Attributes
    ----------
    param_name_ : str
    cv_scores_ : ndarray of shape (len(path), n_splits)
    mean_scores_ : ndarray of shape (len(path),)
    best_index_ : int
    best_value_ : object
        ``path[best_index_]``.
    best_estimator_ : estimator
        With ``refit``.
    n_features_in_ : int

    Examples
    --------
    >>> from sktensorcnn import TuckerCNNRegressor
    >>> from sktensorcnn.datasets import make_cnn_regression
    >>> from sktensorcnn.model_selection import RankPathCV
    >>> X, y, _ = make_cnn_regression("T1", n_samples=400, noise=0.5,
    ...                               random_state=0)
    >>> est = TuckerCNNRegressor(1, n_kernels=2, kernel_size=(5, 5, 3),
    ...                          pool_size=3, random_state=0)
    >>> search = RankPathCV(est, path=[1, (2, 2, 2, 1), (3, 3, 3, 2)], cv=3)
    >>> search.fit(X, y).best_value_  # the teacher's ranks
    (2, 2, 2, 1)
    >>> search.mean_scores_.shape
    (3,)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"])],
        "path": [list],
        "cv": ["cv_object"],
        "scoring": [str, callable, None],
        "refit": ["boolean"],
    }

    def __init__(self, estimator, path, *, cv=5, scoring=None, refit=True):
        self.estimator = estimator
        self.path = path
        self.cv = cv
        self.scoring = scoring
        self.refit = refit

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Walk the path on every fold and keep the best candidate.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        if not self.path:
            raise ValueError("path is empty; give at least one candidate.")
        name = _path_parameter(self.estimator)
        if sp.issparse(X):  # as the estimators say it
            raise TypeError(
                "Sparse data was passed for X, but dense data is required. Use "
                "'.toarray()' to convert to a dense numpy array."
            )
        lazy = is_dask_array(X)  # a Dask array stays where its blocks are
        X = X if lazy else np.asarray(X)
        y = np.asarray(y)
        self.param_name_ = name
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        scorer = check_scoring(self.estimator, scoring=self.scoring)
        # the splitters read the samples' count (and y), not their values
        splits = list(cv.split(np.zeros((len(y), 1)) if lazy
                               else X.reshape(len(X), -1), y))
        scores = np.empty((len(self.path), len(splits)))
        for f, (train, test) in enumerate(splits):
            w = None if sample_weight is None else np.asarray(sample_weight)[train]
            cache, previous = {}, None
            for i, value in enumerate(self.path):
                est = clone(self.estimator).set_params(**{name: value})
                if est.n_init == "auto" and previous is not None:
                    # the warm start stands in for the random restarts
                    est.set_params(n_init=1)
                est._validate_params()
                with est._compute():
                    est._fit(X[train], y[train], w, path_cache=cache,
                             previous=previous)
                scores[i, f] = scorer(est, X[test], y[test])
                previous = est
        self.cv_scores_ = scores
        self.mean_scores_ = scores.mean(axis=1)
        self.best_index_ = int(np.argmax(self.mean_scores_))
        self.best_value_ = self.path[self.best_index_]
        if self.refit:
            self.best_estimator_ = clone(self.estimator).set_params(
                **{name: self.best_value_}).fit(X, y, sample_weight)
            self.n_features_in_ = self.best_estimator_.n_features_in_
        return self

    def predict(self, X):
        """``best_estimator_.predict``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    def score(self, X, y, sample_weight=None):
        """``best_estimator_.score``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
