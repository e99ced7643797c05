"""Classifiers: dense, Tucker and CP convolution -> pooling -> fully-connected nets.

Binary: one output ``f``, the logistic loss ([Compressed CNNs], eq. 24),
``P(classes_[1]) =
sigmoid(f)``.  ``M > 2`` classes: the kernels are shared and every class has its
own FC weights ``B_{k,m}`` ([Compressed CNNs], App. A.4), giving ``M`` outputs; the
loss is
the softmax cross-entropy (``multi_class='multinomial'``, the default) or the sum
of ``M`` logistic losses, one class against the rest, as the seed describes
(``'ovr'``).  With the identity activation the network is linear in the conv-pool
features ``Z``: logistic (or multinomial) regression with a low-rank weight, fitted
by L-BFGS on ``Z``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, logsumexp
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets

from ._base import BaseTensorCNN, _stochastic_solver
from ._dask import map_rows
from ._docstrings import COMMON_ATTRS_DOC, append_common_docs
from .kernel_structures import CPKernels, DenseKernels, TuckerKernels

__all__ = ["CNNClassifier", "TuckerCNNClassifier", "CPCNNClassifier"]


class _TensorCNNClassifier(ClassifierMixin, BaseTensorCNN):
    """Logistic / multinomial / one-vs-rest losses; outputs are class scores."""

    _classifier_constraints: dict = {
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "multi_class": [StrOptions({"multinomial", "ovr"})],
    }

    # ------------------------------------------------------------ task hooks
    def _loss(self) -> str:
        return "logistic" if self._n_out == 1 else self.multi_class

    def _encode_targets(self, y, sample_weight, *, reset, classes=None):
        """Class indices (float64) and sample weights times class weights."""
        check_classification_targets(y)
        if reset:
            labels = np.unique(y if classes is None else np.asarray(classes))
            if labels.shape[0] < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes; "
                    f"got 1 class, {labels.tolist()!r}."
                )
            self.classes_ = labels
            self._n_out = 1 if labels.shape[0] == 2 else labels.shape[0]
        codes = np.searchsorted(self.classes_, y)
        codes = np.minimum(codes, len(self.classes_) - 1)
        unknown = self.classes_[codes] != y
        if np.any(unknown):
            raise ValueError(
                f"y has labels {np.unique(y[unknown]).tolist()!r} not in classes_ "
                f"{self.classes_.tolist()!r}; pass every label to the first "
                "partial_fit call with classes=..."
            )
        if self.class_weight is not None:
            if self.class_weight == "balanced" and not reset:
                raise ValueError(
                    "class_weight='balanced' is computed from the whole training "
                    "set and cannot be used with partial_fit; give a dict of "
                    "class weights instead."
                )
            weights = compute_class_weight(self.class_weight, classes=self.classes_,
                                           y=y)
            sample_weight = sample_weight * weights[codes]
        return codes.astype(np.float64), sample_weight

    def _class_priors(self, y, sample_weight):
        n_classes = 2 if self._n_out == 1 else self._n_out
        counts = np.bincount(y.astype(np.intp), weights=sample_weight,
                             minlength=n_classes)
        return np.clip(counts / counts.sum(), 1e-6, None)

    def _initial_intercept(self, y, sample_weight):
        """Log-odds (binary, one-vs-rest) or log-priors (multinomial) of the
        classes: the best constant model."""
        if not self.fit_intercept:
            return np.zeros(self._n_out)
        p = self._class_priors(y, sample_weight)
        if self._n_out == 1:
            return np.array([np.log(p[1] / p[0])])
        if self.multi_class == "ovr":
            return np.log(p / np.clip(1.0 - p, 1e-6, None))
        return np.log(p) - np.log(p).mean()

    def _indicator_targets(self, y):
        """Targets of the least squares start: ``y`` (binary) or one-hot."""
        if self._n_out == 1:
            return y[:, None]
        return (np.arange(self._n_out) == y.astype(np.intp)[:, None]).astype(float)

    def _validation_order(self, y, n_val, rng):
        """Stratified: each class is represented in the held-out part in
        proportion (its samples are spread evenly over the order)."""
        order = rng.permutation(len(y))
        codes = y[order].astype(np.intp)
        # rank of each sample within its class, as a fraction of the class size
        position = np.empty(len(y))
        for code in np.unique(codes):
            members = np.flatnonzero(codes == code)
            position[members] = (np.arange(len(members)) + 0.5) / len(members)
        return order[np.argsort(position, kind="stable")]

    def _validation_score(self, y_true, outputs, sample_weight):
        """Accuracy, the score early stopping tracks."""
        return accuracy_score(y_true, self._codes(outputs),
                              sample_weight=sample_weight)

    def _set_outputs(self, name, values):
        setattr(self, name, values)

    # ------------------------------------------------------------ predictions
    def _codes(self, outputs):
        if outputs.shape[1] == 1:
            return (outputs[:, 0] > 0).astype(np.intp)
        return np.argmax(outputs, axis=1)

    def decision_function(self, X):
        """Class scores: the network's outputs.

        Parameters
        ----------
        X : array-like of shape ``(n_samples, *input_shape_)``

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Binary: the log-odds of ``classes_[1]``.  Otherwise one score per
            class (logits of the softmax, or of each one-vs-rest problem).
        """
        outputs = self._decision(X)
        return outputs[:, 0] if outputs.shape[1] == 1 else outputs

    def predict(self, X):
        """Predict class labels.

        Parameters
        ----------
        X : array-like of shape ``(n_samples, *input_shape_)``

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        return map_rows(self._decision(X),
                        lambda outputs: self.classes_[self._codes(outputs)],
                        dtype=self.classes_.dtype)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`, computed stably.

        Parameters
        ----------
        X : array-like of shape ``(n_samples, *input_shape_)``

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        return map_rows(self._decision(X), self._log_proba, len(self.classes_))

    def predict_proba(self, X):
        """Class probabilities, in the order of ``classes_``.

        Binary: ``sigmoid(f)`` for ``classes_[1]``.  Multinomial: the softmax of
        the outputs.  One-vs-rest: each class's sigmoid, normalized to sum to 1
        (as scikit-learn's one-vs-rest classifiers do).

        Parameters
        ----------
        X : array-like of shape ``(n_samples, *input_shape_)``

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return map_rows(self._decision(X),
                        lambda outputs: np.exp(self._log_proba(outputs)),
                        len(self.classes_))

    def _log_proba(self, outputs):
        if outputs.shape[1] == 1:
            f = outputs[:, 0]
            return np.column_stack([-np.logaddexp(0.0, f), -np.logaddexp(0.0, -f)])
        if self.multi_class == "multinomial":
            return log_softmax(outputs, axis=1)
        # one-vs-rest: sigmoids normalized, in logs
        log_p = -np.logaddexp(0.0, -outputs)
        return log_p - logsumexp(log_p, axis=1, keepdims=True)

    @available_if(_stochastic_solver)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Run one epoch of ``'adam'`` (or ``'gd'``) on ``(X, y)``.

        The first call initializes the network (as ``fit`` would, with
        ``init``) and needs every class label in ``classes``; later calls, and
        calls after ``fit``, continue from the current weights (and optimizer
        state).  ``solver='auto'`` means ``'adam'`` here; with another solver
        (``'lbfgs'``, ...) there is no ``partial_fit``.  With a kernel-entry
        ``constraint`` the kernels are projected after each epoch (projected
        stochastic gradient).

        Parameters
        ----------
        X : array-like of shape ``(n_samples, *input_shape)``
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            All class labels; required on the first call, ignored later.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        first = not hasattr(self, "kernels_")
        if first and classes is None:
            raise ValueError(
                "classes must be given to the first call of partial_fit: the "
                "network's outputs depend on the number of classes."
            )
        return self._partial_fit(X, y, sample_weight, first, classes=classes)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags


_CLASSIFIER_PARAMS_DOC = """
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes in the loss, multiplying ``sample_weight``:
        ``{label: weight}``, or ``'balanced'`` for
        ``n_samples / (n_classes * count(label))``.
    multi_class : {'multinomial', 'ovr'}, default='multinomial'
        With more than two classes: one softmax over the class outputs, or one
        logistic loss per class against the rest ([Compressed CNNs], App. A.4).  The
        kernels are shared across classes either way.  Ignored for two classes.
"""

_CLASSIFIER_ATTRS_DOC = """
    classes_ : ndarray of shape (n_classes,)
        Class labels, sorted.
    kernels_ : ndarray of shape (n_kernels, [C], l_1, ..., l_N)
        Convolution kernels ``A_k``, shared by the classes.
    fc_weights_ : ndarray of shape (n_outputs, n_kernels, p_1, ..., p_N)
        Fully-connected weights ``B_{k,m}`` of each output (``n_outputs`` is 1 for
        two classes, ``n_classes`` otherwise).
    intercept_ : ndarray of shape (n_outputs,)
        Biases of the outputs.
    weight_ : ndarray of shape (n_outputs, l_1, ..., l_N, [C], P)
        Identity activation only: composite weight of each output on the conv-pool
        features.
    coef_ : ndarray of shape ``(n_outputs, *input_shape_)``
        Identity activation only: the weight of each output in input space,
        ``decision_function(X)[i, m] == <X[i], coef_[m]> + intercept_[m]``.""" \
    + COMMON_ATTRS_DOC

class CNNClassifier(DenseKernels, _TensorCNNClassifier):
    """Convolution -> average pooling -> fully-connected classifier, dense kernels.

    ``n_kernels`` kernels shared by the classes; each class has its own FC weights.

    Parameters
    ----------
    n_kernels : int, default=1
        Number of kernels ``K``.
    """

    _parameter_constraints = {
        **BaseTensorCNN._parameter_constraints,
        **DenseKernels._structure_constraints,
        **_TensorCNNClassifier._classifier_constraints,
    }

    def __init__(
        self, n_kernels=1, *, kernel_size=3, stride=1, padding="valid",
        pool_size=2, pool_stride=None, channel_axis=None, sample_shape=None,
        activation="identity",
        solver="auto", alpha="auto", fit_intercept=True, max_iter="auto", tol=1e-6,
        n_init="auto", init="auto", batch_size="auto", shuffle=True,
        learning_rate_init="auto", momentum=0.9, early_stopping=False,
        validation_fraction=0.1, n_iter_no_change=10, random_state=None, verbose=0,
        warm_start=False, n_jobs=None, constraint=None, sparsity=None,
        radius=None, device="cpu", class_weight=None, multi_class="multinomial",
    ):
        super().__init__(
            kernel_size=kernel_size, stride=stride, padding=padding,
            pool_size=pool_size, pool_stride=pool_stride, channel_axis=channel_axis,
            sample_shape=sample_shape, activation=activation, solver=solver,
            alpha=alpha, fit_intercept=fit_intercept, max_iter=max_iter, tol=tol,
            n_init=n_init, init=init, batch_size=batch_size, shuffle=shuffle,
            learning_rate_init=learning_rate_init, momentum=momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, random_state=random_state,
            verbose=verbose, warm_start=warm_start, n_jobs=n_jobs,
            constraint=constraint, sparsity=sparsity, radius=radius, device=device,
        )
        self.n_kernels = n_kernels
        self.class_weight = class_weight
        self.multi_class = multi_class


class TuckerCNNClassifier(TuckerKernels, _TensorCNNClassifier):
    """CNN classifier whose stacked kernel tensor has low Tucker rank.

    The kernels are ``G x_1 H_1 ... x_N H_N [x H_C] x H_{N+1}`` as in
    :class:`~sktensorcnn.TuckerCNNRegressor`, shared by the classes.

    Parameters
    ----------
    ranks : int or tuple of int, default=2
        ``(R_1, ..., R_N, [R_C], R_{N+1})``, as for
        :class:`~sktensorcnn.TuckerCNNRegressor`; ``R_{N+1} <= min(n_kernels,
        P * n_outputs)``.
    n_kernels : int or None, default=None
        Number of kernels ``K``; ``None`` means ``R_{N+1}`` (with ``solver='lrd'``,
        the output rank it settles on).
    energy : float in (0, 1], default=0.95
        ``solver='lrd'`` only: the compression keeps, per mode, the smallest rank
        whose leading singular values hold this share of the unfolding's squared
        norm (``ranks`` are then the caps).
    """

    _parameter_constraints = {
        **BaseTensorCNN._parameter_constraints,
        **TuckerKernels._structure_constraints,
        **_TensorCNNClassifier._classifier_constraints,
    }

    def __init__(
        self, ranks=2, *, n_kernels=None, energy=0.95, kernel_size=3, stride=1,
        padding="valid",
        pool_size=2, pool_stride=None, channel_axis=None, sample_shape=None,
        activation="identity",
        solver="auto", alpha="auto", fit_intercept=True, max_iter="auto", tol=1e-6,
        n_init="auto", init="auto", batch_size="auto", shuffle=True,
        learning_rate_init="auto", momentum=0.9, early_stopping=False,
        validation_fraction=0.1, n_iter_no_change=10, random_state=None, verbose=0,
        warm_start=False, n_jobs=None, constraint=None, sparsity=None,
        radius=None, device="cpu", class_weight=None, multi_class="multinomial",
    ):
        super().__init__(
            kernel_size=kernel_size, stride=stride, padding=padding,
            pool_size=pool_size, pool_stride=pool_stride, channel_axis=channel_axis,
            sample_shape=sample_shape, activation=activation, solver=solver,
            alpha=alpha, fit_intercept=fit_intercept, max_iter=max_iter, tol=tol,
            n_init=n_init, init=init, batch_size=batch_size, shuffle=shuffle,
            learning_rate_init=learning_rate_init, momentum=momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, random_state=random_state,
            verbose=verbose, warm_start=warm_start, n_jobs=n_jobs,
            constraint=constraint, sparsity=sparsity, radius=radius, device=device,
        )
        self.ranks = ranks
        self.n_kernels = n_kernels
        self.energy = energy
        self.class_weight = class_weight
        self.multi_class = multi_class


class CPCNNClassifier(CPKernels, _TensorCNNClassifier):
    """CNN classifier whose stacked kernel tensor has low CP rank.

    Each kernel is a combination of ``R`` separable (rank-one) kernels, as in
    :class:`~sktensorcnn.CPCNNRegressor`, shared by the classes.

    Parameters
    ----------
    rank : int, default=2
        CP rank ``R`` of the stacked kernels; at most ``n_kernels``.
    n_kernels : int or None, default=None
        Number of kernels ``K``; ``None`` means ``rank``.
    """

    _parameter_constraints = {
        **BaseTensorCNN._parameter_constraints,
        **CPKernels._structure_constraints,
        **_TensorCNNClassifier._classifier_constraints,
    }

    def __init__(
        self, rank=2, *, n_kernels=None, kernel_size=3, stride=1, padding="valid",
        pool_size=2, pool_stride=None, channel_axis=None, sample_shape=None,
        activation="identity",
        solver="auto", alpha="auto", fit_intercept=True, max_iter="auto", tol=1e-6,
        n_init="auto", init="auto", batch_size="auto", shuffle=True,
        learning_rate_init="auto", momentum=0.9, early_stopping=False,
        validation_fraction=0.1, n_iter_no_change=10, random_state=None, verbose=0,
        warm_start=False, n_jobs=None, constraint=None, sparsity=None,
        radius=None, device="cpu", class_weight=None, multi_class="multinomial",
    ):
        super().__init__(
            kernel_size=kernel_size, stride=stride, padding=padding,
            pool_size=pool_size, pool_stride=pool_stride, channel_axis=channel_axis,
            sample_shape=sample_shape, activation=activation, solver=solver,
            alpha=alpha, fit_intercept=fit_intercept, max_iter=max_iter, tol=tol,
            n_init=n_init, init=init, batch_size=batch_size, shuffle=shuffle,
            learning_rate_init=learning_rate_init, momentum=momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, random_state=random_state,
            verbose=verbose, warm_start=warm_start, n_jobs=n_jobs,
            constraint=constraint, sparsity=sparsity, radius=radius, device=device,
        )
        self.rank = rank
        self.n_kernels = n_kernels
        self.class_weight = class_weight
        self.multi_class = multi_class


_DIGITS = """
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.reshape(-1, 8, 8) / 16  # 8 x 8 images, 10 classes"""

_CLASSIFIER_EXAMPLES = {
    CNNClassifier: _DIGITS + """
    >>> from sktensorcnn import CNNClassifier
    >>> clf = CNNClassifier(n_kernels=8, kernel_size=3, pool_size=2,
    ...                     random_state=0).fit(X[:1000], y[:1000])
    >>> clf.score(X[1000:], y[1000:]) > 0.9
    True
    >>> clf.kernels_.shape, clf.fc_weights_.shape  # kernels shared by the classes
    ((8, 3, 3), (10, 8, 3, 3))
    >>> clf.predict_proba(X[:2]).shape
    (2, 10)
""",
    TuckerCNNClassifier: _DIGITS + """
    >>> from sktensorcnn import TuckerCNNClassifier
    >>> clf = TuckerCNNClassifier((3, 3, 4), n_kernels=8, kernel_size=3,
    ...                           pool_size=2, max_iter=1000,
    ...                           random_state=0).fit(X[:1000], y[:1000])
    >>> clf.score(X[1000:], y[1000:]) > 0.9
    True
    >>> clf.core_.shape
    (3, 3, 4)
""",
    CPCNNClassifier: _DIGITS + """
    >>> from sktensorcnn import CPCNNClassifier
    >>> clf = CPCNNClassifier(rank=4, n_kernels=8, kernel_size=3, pool_size=2,
    ...                       max_iter=1000, random_state=0).fit(X[:1000], y[:1000])
    >>> clf.score(X[1000:], y[1000:]) > 0.9
    True
    >>> [A.shape for A in clf.factors_]
    [(3, 4), (3, 4), (8, 4)]
""",
}

for _cls in (CNNClassifier, TuckerCNNClassifier, CPCNNClassifier):
    append_common_docs(_cls, _CLASSIFIER_ATTRS_DOC, _CLASSIFIER_PARAMS_DOC,
                       _CLASSIFIER_EXAMPLES[_cls])
