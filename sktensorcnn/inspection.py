"""Plots of fitted estimators, in the style of scikit-learn's displays.

Each display is built by a class method (``from_estimator`` or
``from_cv_results``) that draws it, keeps what it drew in attributes ending in
``_`` (``figure_``, ``ax_`` ...) and can be drawn again with :meth:`plot`.
matplotlib is an optional dependency: ``pip install "sktensorcnn[plot]"``.

* :class:`KernelDisplay`: the fitted kernels, or the input-space weight
  ``coef_`` of the identity network, as images (curves for signals, slices for
  volumes);
* :class:`LossCurveDisplay`: the objective per iteration and, with early
  stopping, the validation score per epoch;
* :class:`RankScoreDisplay`: the cross-validated score of a
  ``GridSearchCV`` or :class:`~sktensorcnn.model_selection.RankPathCV` against
  the ranks, or against the model complexity ``d_M`` of [Compressed CNNs].
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

__all__ = ["KernelDisplay", "LossCurveDisplay", "RankScoreDisplay"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "sktensorcnn.inspection draws with matplotlib, which is not installed; "
            'install it with pip install "sktensorcnn[plot]" (or pip install '
            "matplotlib)."
        ) from error
    return plt


def _final_step(estimator):
    """The sktensorcnn estimator at the end of a pipeline (or ``estimator``)."""
    while hasattr(estimator, "steps"):
        estimator = estimator.steps[-1][1]
    return estimator


def _axes_grid(ax, n: int, n_columns: int):
    """``n`` axes: the given ones (one Axes or an array of them) or a new grid."""
    plt = _pyplot()
    if ax is None:
        n_columns = max(1, min(n_columns, n))
        n_rows = -(-n // n_columns)
        figure, axes = plt.subplots(n_rows, n_columns, squeeze=False,
                                    figsize=(1.8 * n_columns + 1, 1.8 * n_rows + 0.4))
        axes = axes.ravel()
        for extra in axes[n:]:
            extra.set_visible(False)
        return figure, axes[:n]
    axes = np.atleast_1d(np.asarray(ax, dtype=object)).ravel()
    if axes.size < n:
        raise ValueError(
            f"ax holds {axes.size} Axes but there are {n} images to draw; pass at "
            f"least {n} Axes (e.g. plt.subplots(1, {n})[1]) or ax=None for a new "
            "figure."
        )
    return axes[0].figure, axes[:n]


class KernelDisplay:
    """Fitted kernels, or the input-space weight ``coef_``, as images.

    One panel per kernel (and per channel, or one channel with ``channel=``):
    a curve for one spatial mode, an image for two, and for three or more the
    slice at ``slice_index`` of every mode after the first two.  The colour
    scale is shared and centred on zero, so panels compare.

    Build it with :meth:`from_estimator`.

    Parameters
    ----------
    images : list of ndarray
        1-d (curves) or 2-d (images) arrays, one per panel.
    titles : list of str
        One per panel.
    suptitle : str, default=''
        Title of the figure.

    Attributes
    ----------
    figure_ : matplotlib Figure
    axes_ : ndarray of matplotlib Axes
        One per panel.
    artists_ : list
        The ``AxesImage`` (or ``Line2D``) of each panel.

    Examples
    --------
    >>> import numpy as np
    >>> from sktensorcnn import CNNRegressor
    >>> from sktensorcnn.inspection import KernelDisplay
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((60, 8, 8)), rng.standard_normal(60)
    >>> est = CNNRegressor(kernel_size=3, n_kernels=2, pool_size=2).fit(X, y)
    >>> display = KernelDisplay.from_estimator(est)
    >>> len(display.axes_)
    2
    """

    def __init__(self, images, titles, suptitle: str = ""):
        self.images = [np.asarray(image) for image in images]
        self.titles = list(titles)
        self.suptitle = suptitle

    @classmethod
    def from_estimator(cls, estimator, *, weights: str = "kernels", output: int = 0,
                       channel: int | None = None, slice_index: int | None = None,
                       ax=None, n_columns: int = 6, cmap: str = "RdBu_r"
                       ) -> KernelDisplay:
        """Draw the fitted kernels (or ``coef_``) of an estimator or pipeline.

        Parameters
        ----------
        estimator : fitted sktensorcnn estimator, or a pipeline ending in one
        weights : {'kernels', 'coef'}, default='kernels'
            ``'kernels'``: the ``K`` fitted kernels ``kernels_``.  ``'coef'``:
            the input-space weight ``coef_`` of an identity-activation network
            (what the network does to one input sample).
        output : int, default=0
            For ``'coef'`` with several targets or classes: which one.
        channel : int or None, default=None
            For samples with channels: draw only this channel (``None``: every
            channel, one row of panels each).
        slice_index : int or None, default=None
            For three or more spatial modes: the index at which every mode after
            the first two is sliced (``None``: the middle).
        ax : matplotlib Axes, array of Axes or None, default=None
            Where to draw, one Axes per panel; ``None`` makes a new figure.
        n_columns : int, default=6
            Panels per row of a new figure (kernels of one channel share a row
            when there are several channels).
        cmap : str, default='RdBu_r'

        Returns
        -------
        KernelDisplay
        """
        step = _final_step(estimator)
        check_is_fitted(step, "geometry_")
        if weights not in ("kernels", "coef"):
            raise ValueError(
                f"weights={weights!r} is not one of 'kernels', 'coef'."
            )
        geometry = step.geometry_
        has_channels = geometry.n_channels is not None
        if weights == "kernels":
            # kernels_: (K, [C], l_1, ..., l_N), channels in front whatever the
            # input layout
            stack = np.asarray(step.kernels_)
            names = [f"kernel {k}" for k in range(stack.shape[0])]
        else:
            if not hasattr(step, "coef_"):  # a property of the identity network
                raise ValueError(
                    "weights='coef' needs coef_, which only the identity "
                    "activation defines (this estimator's activation is "
                    f"{step.activation!r}); use weights='kernels'."
                )
            coef = np.asarray(step.coef_, dtype=float)
            sample_ndim = len(step.input_shape_)
            if coef.ndim > sample_ndim:  # several outputs first
                if not 0 <= output < coef.shape[0]:
                    raise ValueError(
                        f"output={output} is out of range: coef_ has "
                        f"{coef.shape[0]} outputs."
                    )
                coef = coef[output]
            if has_channels and getattr(step, "channel_axis", None) == -1:
                coef = np.moveaxis(coef, -1, 0)
            stack = coef[None]
            names = ["coef_" if step.coef_.ndim == sample_ndim
                     else f"coef_[{output}]"]
        if not has_channels:
            stack = stack[:, None]
        n_channels = stack.shape[1]
        if channel is not None:
            if not 0 <= channel < n_channels:
                raise ValueError(
                    f"channel={channel} is out of range: the samples have "
                    f"{n_channels if has_channels else 'no'} channels."
                )
            stack = stack[:, [channel]]
        channels = [channel] if channel is not None else list(range(n_channels))
        spatial = stack.shape[2:]
        index: tuple = ()
        if len(spatial) > 2:
            if slice_index is None:
                index = tuple(m // 2 for m in spatial[2:])
            else:
                if not all(0 <= slice_index < m for m in spatial[2:]):
                    raise ValueError(
                        f"slice_index={slice_index} is out of range for the "
                        f"modes {spatial[2:]} that are sliced."
                    )
                index = (slice_index,) * (len(spatial) - 2)
        images, titles = [], []
        for c_pos, c in enumerate(channels):
            for k, name in enumerate(names):
                image = stack[k, c_pos][(Ellipsis, *index)]
                images.append(image)
                title = name
                if has_channels:
                    title += f", channel {c}"
                if index:
                    title += ", slice " + ",".join(map(str, index))
                titles.append(title)
        if has_channels and channel is None and len(names) > 1:
            n_columns = len(names)
        suptitle = f"{type(step).__name__}: " + (
            "fitted kernels" if weights == "kernels" else "input-space weight coef_")
        display = cls(images, titles, suptitle)
        return display.plot(ax=ax, n_columns=n_columns, cmap=cmap)

    def plot(self, ax=None, *, n_columns: int = 6, cmap: str = "RdBu_r"
             ) -> KernelDisplay:
        """Draw the panels.

        Parameters
        ----------
        ax : matplotlib Axes, array of Axes or None, default=None
            One Axes per panel; ``None`` makes a new figure.
        n_columns : int, default=6
            Panels per row of a new figure.
        cmap : str, default='RdBu_r'

        Returns
        -------
        KernelDisplay
            ``self``.
        """
        figure, axes = _axes_grid(ax, len(self.images), n_columns)
        peak = max((float(np.max(np.abs(image))) for image in self.images),
                   default=0.0) or 1.0
        self.artists_ = []
        for axis, image, title in zip(axes, self.images, self.titles):
            if image.ndim == 1:
                (artist,) = axis.plot(image)
                axis.axhline(0.0, color="0.7", linewidth=0.8)
                axis.set_ylim(-1.05 * peak, 1.05 * peak)
            else:
                artist = axis.imshow(image, cmap=cmap, vmin=-peak, vmax=peak)
                axis.set_xticks([])
                axis.set_yticks([])
            axis.set_title(title, fontsize="small")
            self.artists_.append(artist)
        if self.suptitle and ax is None:
            figure.suptitle(self.suptitle)
        self.figure_, self.axes_ = figure, axes
        return self


class LossCurveDisplay:
    """The training objective per iteration and, with early stopping, the
    validation score per epoch (on a second y axis).

    Build it with :meth:`from_estimator`.

    Parameters
    ----------
    loss_curve : array-like
        Objective after each iteration (``loss_curve_``).
    validation_scores : array-like or None, default=None
        Validation score per epoch (``validation_scores_``).
    estimator_name : str or None, default=None

    Attributes
    ----------
    line_ : matplotlib Line2D
        The loss curve.
    validation_line_ : matplotlib Line2D or None
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sktensorcnn import CNNRegressor
    >>> from sktensorcnn.inspection import LossCurveDisplay
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((60, 8, 8)), rng.standard_normal(60)
    >>> est = CNNRegressor(kernel_size=3, n_kernels=2, pool_size=2,
    ...                    activation="relu").fit(X, y)
    >>> display = LossCurveDisplay.from_estimator(est)
    >>> len(display.line_.get_xdata()) == len(est.loss_curve_)
    True
    """

    def __init__(self, loss_curve, validation_scores=None,
                 estimator_name: str | None = None):
        self.loss_curve = np.asarray(loss_curve, dtype=float)
        self.validation_scores = (None if validation_scores is None
                                  else np.asarray(validation_scores, dtype=float))
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name: str | None = None,
                       log_scale: bool = True) -> LossCurveDisplay:
        """Draw the loss curve of a fitted estimator or pipeline.

        Parameters
        ----------
        estimator : fitted sktensorcnn estimator, or a pipeline ending in one
        ax : matplotlib Axes or None, default=None
        name : str or None, default=None
            Legend label; the estimator's class name by default.
        log_scale : bool, default=True
            Logarithmic loss axis.

        Returns
        -------
        LossCurveDisplay
        """
        step = _final_step(estimator)
        check_is_fitted(step, "loss_curve_")
        display = cls(step.loss_curve_, getattr(step, "validation_scores_", None),
                      name or type(step).__name__)
        return display.plot(ax=ax, log_scale=log_scale)

    def plot(self, ax=None, *, name: str | None = None, log_scale: bool = True
             ) -> LossCurveDisplay:
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
        name : str or None, default=None
            Legend label (``estimator_name`` by default).
        log_scale : bool, default=True

        Returns
        -------
        LossCurveDisplay
            ``self``.
        """
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots()
        label = name or self.estimator_name or "loss"
        iterations = np.arange(len(self.loss_curve))
        (self.line_,) = ax.plot(iterations, self.loss_curve, label=label)
        if log_scale and np.all(self.loss_curve > 0):
            ax.set_yscale("log")
        ax.set_xlabel("iteration (epoch for 'gd' / 'adam')")
        ax.set_ylabel("training objective")
        self.validation_line_ = None
        if self.validation_scores is not None and len(self.validation_scores):
            twin = ax.twinx()
            (self.validation_line_,) = twin.plot(
                np.arange(len(self.validation_scores)), self.validation_scores,
                color="C1", linestyle="--", label="validation score")
            twin.set_ylabel("validation score")
        ax.legend(handles=[h for h in (self.line_, self.validation_line_)
                           if h is not None], loc="upper right")
        self.ax_, self.figure_ = ax, ax.figure
        return self


def _candidate_complexity(step, params: dict, geometry, n_out: int) -> int:
    """``d_M`` of ``step`` with ``params`` on ``geometry``, without fitting."""
    candidate = clone(step).set_params(**params)
    structure = candidate._kernel_structure(geometry, n_out)
    candidate.n_kernels_ = structure.n_kernels
    ranks = getattr(structure.kernels, "ranks", None)
    if ranks is not None:
        candidate.ranks_ = tuple(ranks)
    return int(candidate._model_complexity(geometry, n_out))


class RankScoreDisplay:
    """Cross-validated score against the ranks (or ``n_kernels``), or against
    the model complexity ``d_M`` of [Compressed CNNs].

    Build it with :meth:`from_cv_results` from a fitted ``GridSearchCV`` (over
    one parameter, or several with the others held at their best values) or a
    :class:`~sktensorcnn.model_selection.RankPathCV`.

    Parameters
    ----------
    values : list
        The candidate parameter values, in the order drawn.
    mean_scores, std_scores : array-like
        Mean and standard deviation of the held-out scores of each candidate.
    param_name : str
    complexities : array-like of int or None, default=None
        ``d_M`` of each candidate; when given, it is the x axis.
    best_index : int or None, default=None
        Candidate marked as chosen.

    Attributes
    ----------
    line_ : matplotlib ErrorbarContainer
    best_marker_ : matplotlib Line2D or None
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sktensorcnn import TuckerCNNRegressor
    >>> from sktensorcnn.model_selection import RankPathCV
    >>> from sktensorcnn.inspection import RankScoreDisplay
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((60, 6, 6)), rng.standard_normal(60)
    >>> search = RankPathCV(TuckerCNNRegressor(1, kernel_size=3, pool_size=2),
    ...                     path=[1, 2], cv=3).fit(X, y)
    >>> display = RankScoreDisplay.from_cv_results(search, x="d_M")
    >>> display.complexities.tolist()  # d_M of ranks 1 and 2 on this geometry
    [11, 28]
    """

    def __init__(self, values, mean_scores, std_scores, param_name: str, *,
                 complexities=None, best_index: int | None = None):
        self.values = list(values)
        self.mean_scores = np.asarray(mean_scores, dtype=float)
        self.std_scores = np.asarray(std_scores, dtype=float)
        self.param_name = param_name
        self.complexities = (None if complexities is None
                             else np.asarray(complexities, dtype=int))
        self.best_index = best_index

    @classmethod
    def from_cv_results(cls, search, *, param: str | None = None, x: str = "param",
                        ax=None) -> RankScoreDisplay:
        """Draw the held-out score of each candidate of a fitted search.

        Parameters
        ----------
        search : fitted GridSearchCV or RankPathCV
            A ``GridSearchCV`` needs ``refit=True`` for ``x='d_M'`` (the
            geometry is read off ``best_estimator_``).
        param : str or None, default=None
            For a ``GridSearchCV``: the parameter on the x axis (its name in
            ``param_grid``, e.g. ``'tuckercnnregressor__ranks'``); ``None``
            takes the only one that varies.
        x : {'param', 'd_M'}, default='param'
            The parameter's values, or each candidate's ``d_M``.
        ax : matplotlib Axes or None, default=None

        Returns
        -------
        RankScoreDisplay
        """
        if x not in ("param", "d_M"):
            raise ValueError(f"x={x!r} is not one of 'param', 'd_M'.")
        if hasattr(search, "mean_scores_"):  # RankPathCV
            check_is_fitted(search, "mean_scores_")
            name = search.param_name_
            values = list(search.path)
            means = search.mean_scores_
            stds = np.std(search.cv_scores_, axis=1)
            best = int(search.best_index_)
            fixed: dict[str, Any] = {}
        elif hasattr(search, "cv_results_"):
            name, values, means, stds, best, fixed = _grid_candidates(search, param)
        else:
            raise TypeError(
                "search must be a fitted GridSearchCV or RankPathCV; got "
                f"{type(search).__name__} (call its fit first)."
            )
        complexities = None
        if x == "d_M":
            fitted = getattr(search, "best_estimator_", None)
            if fitted is None:
                raise ValueError(
                    "x='d_M' reads the geometry off best_estimator_; fit the "
                    "search with refit=True."
                )
            step = _final_step(fitted)
            short = name.rsplit("__", 1)[-1]
            base = {k.rsplit("__", 1)[-1]: v for k, v in fixed.items()}
            complexities = [
                _candidate_complexity(step, {**base, short: value}, step.geometry_,
                                      step._n_out)
                for value in values]
        display = cls(values, means, stds, name, complexities=complexities,
                      best_index=best)
        return display.plot(ax=ax)

    def plot(self, ax=None) -> RankScoreDisplay:
        """Draw the scores with one standard deviation across folds.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None

        Returns
        -------
        RankScoreDisplay
            ``self``.
        """
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots()
        labels = [str(v) for v in self.values]
        if self.complexities is not None:
            positions = self.complexities
            ax.set_xlabel("model complexity d_M")
        else:
            positions = np.arange(len(self.values))
            ax.set_xticks(positions, labels, rotation=30 if len(labels) > 6 else 0)
            ax.set_xlabel(self.param_name)
        self.line_ = ax.errorbar(positions, self.mean_scores, yerr=self.std_scores,
                                 marker="o", capsize=3, label="mean held-out score")
        self.best_marker_ = None
        if self.best_index is not None:
            (self.best_marker_,) = ax.plot(
                [positions[self.best_index]], [self.mean_scores[self.best_index]],
                marker="*", markersize=14, linestyle="none", color="C3",
                label=f"chosen: {labels[self.best_index]}")
        if self.complexities is not None:
            for position, score, label in zip(positions, self.mean_scores, labels):
                ax.annotate(label, (position, score), textcoords="offset points",
                            xytext=(0, 6), ha="center", fontsize="x-small")
        ax.set_ylabel("cross-validated score")
        ax.legend(loc="lower right")
        self.ax_, self.figure_ = ax, ax.figure
        return self


def _grid_candidates(search, param):
    """Candidates of a ``GridSearchCV`` along ``param``, the others at their
    best values."""
    results = search.cv_results_
    candidates = results["params"]
    names = sorted({key for params in candidates for key in params})
    varying = [key for key in names
               if len({repr(params.get(key)) for params in candidates}) > 1]
    if param is None:
        if len(varying) != 1:
            raise ValueError(
                f"the search varies {len(varying)} parameters ({', '.join(varying)});"
                " name the one to draw with param=..."
            )
        param = varying[0]
    elif param not in names:
        raise ValueError(
            f"param={param!r} is not a parameter of the search; its parameters "
            f"are {', '.join(names)}."
        )
    fixed = {key: search.best_params_[key] for key in names if key != param}
    rows = [i for i, params in enumerate(candidates)
            if all(repr(params.get(k)) == repr(v) for k, v in fixed.items())]
    values = [candidates[i][param] for i in rows]
    means = np.asarray(results["mean_test_score"])[rows]
    stds = np.asarray(results["std_test_score"])[rows]
    best_rows = [j for j, i in enumerate(rows) if i == search.best_index_]
    return param, values, means, stds, (best_rows[0] if best_rows else None), fixed
