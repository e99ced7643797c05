"""CP / Tucker compression of the convolution ([Tensor generalization]).

The stacked kernel is written as a sum of components ``lambda_r b_r (outer)
W_r``: ``b_r`` a unit vector over the ``K`` kernels, ``W_r`` a unit-norm filter
over ``([C], l_1, ..., l_N)``.  A CP estimator's own rank-one terms are its
components (``W_r`` separable); a Tucker or dense estimator's are the singular
triplets of its kernels unfolded along ``K``.  The convolution with component
``r`` has operator norm at most ``phi_r = sup_w ||W_r^(w)||`` (the filter's
frequency response, its largest value over frequencies), so dropping the
components after ``j`` moves the pre-activations by at most
``xi_j ||x||``, ``xi_j = sum_{r > j} lambda_r phi_r`` (the *tensor noise
bound*; ``t_j``, the sum up to ``j``, is the *tensorization factor*).

With the FC layer left as it is, the network's output moves by at most
``L_act ||Bt||_2 xi_j ||x||``; the paper's rule keeps the fewest components
for which this is at most ``eps ||f0(x)||`` on every training sample, with
``eps = gamma / (2 max ||f0||)``, using the post-activation layer cushions
``zeta_1 = min ||act(x1)|| / (||A||_F ||x||)`` and
``zeta_2 = min ||Bt z|| / (||Bt||_F ||z||)``:

    R_hat = min { j : L_act xi_j ||Bt||_2 <= eps zeta_1 ||A||_F zeta_2 ||Bt||_F }.

Every logit then moves by at most ``gamma / 2`` on the sample, so no sample
of margin above ``gamma`` changes class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._network import TwoLayerNetwork, ratio, validated_samples
from .projection import output_change

__all__ = ["KernelSpectrum", "TensorCompression", "frequency_peak", "kernel_spectrum",
           "tensor_compress"]

#: Lipschitz constants of the activations (squared_relu has none globally).
LIPSCHITZ = {"identity": 1.0, "relu": 1.0, "leaky_relu": 1.0, "tanh": 1.0,
             "softplus": 1.0, "sigmoid": 0.25}

_GRID_ENTRIES = 1 << 21


def frequency_peak(filters: np.ndarray, n_modes: int) -> np.ndarray:
    """An upper bound of ``sup_w ||W^(w)||_2`` for each filter.

    ``W^(w) = sum_p W[:, p] exp(-i w . p)`` is the filter's frequency response
    (a vector over its leading channel axis); its largest norm over all
    frequencies bounds the operator norm of the convolution with ``W`` (zero
    padding and strides only lower it).  Evaluated on an oversampled FFT grid,
    plus the most it can grow between grid points (a rigorous bound).

    Parameters
    ----------
    filters : ndarray of shape (R, C, l_1, ..., l_N)
    n_modes : int
        ``N``: the trailing axes that are spatial.

    Returns
    -------
    ndarray of shape (R,)
    """
    filters = np.asarray(filters, np.float64)
    sizes = filters.shape[-n_modes:]
    per_mode = max(2, int((_GRID_ENTRIES / max(filters.shape[1], 1)) ** (1 / n_modes)))
    # never below the filter's size: a smaller FFT would crop it
    grid = [int(max(min(max(16 * l, 64), per_mode), l)) for l in sizes]
    spectrum = np.fft.fftn(filters, s=grid, axes=tuple(range(-n_modes, 0)))
    on_grid = np.sqrt((np.abs(spectrum) ** 2).sum(axis=1))
    on_grid = on_grid.reshape(filters.shape[0], -1).max(axis=1)
    # |e^{-i w.q} - e^{-i w'.q}| <= sum_j |w_j - w'_j| |q_j|, q centred offsets
    reach = sum(
        np.abs(np.arange(l) - (l - 1) / 2).reshape(
            [l if a == j else 1 for a in range(n_modes)]) * np.pi / g
        for j, (l, g) in enumerate(zip(sizes, grid))
    )
    slack = (np.abs(filters) * reach).reshape(filters.shape[0], -1).sum(axis=1)
    # the triangle inequality over the filter's positions bounds it too
    column_sum = np.linalg.norm(filters, axis=1).reshape(len(filters), -1).sum(axis=1)
    return np.minimum(on_grid + slack, column_sum)


@dataclass(frozen=True)
class KernelSpectrum:
    """The stacked kernel as ``sum_r lambda_r b_r (outer) W_r``, sorted.

    Attributes
    ----------
    weights : ndarray of shape (R,)
        ``lambda_r``, non-increasing.
    peaks : ndarray of shape (R,)
        ``phi_r``, bounds of the operator norm of each unit component's
        convolution (:func:`frequency_peak`).
    kernel_vectors : ndarray of shape (K, R)
        ``b_r``.
    filters : ndarray of shape (R, [C], l_1, ..., l_N)
        ``W_r``, of unit Frobenius norm.
    order : ndarray of shape (R,)
        CP: the estimator's components in this order; SVD: ``arange(R)``.
    kind : {'cp', 'svd'}
    """

    weights: np.ndarray
    peaks: np.ndarray
    kernel_vectors: np.ndarray
    filters: np.ndarray
    order: np.ndarray
    kind: str

    def noise_bound(self, j: int) -> float:
        """``xi_j``: bound of the convolution left out when keeping ``j``."""
        return float(np.sum(self.weights[j:] * self.peaks[j:]))

    def tensorization_factor(self, j: int) -> float:
        """``t_j``: bound of the convolution kept when keeping ``j``."""
        return float(np.sum(self.weights[:j] * self.peaks[:j]))


def kernel_spectrum(estimator) -> KernelSpectrum:
    """The components of a fitted estimator's stacked kernel
    ([Tensor generalization], Prop. 4.1): CP terms for CP estimators, singular
    triplets of the kernels unfolded along ``K`` otherwise."""
    geometry = estimator.geometry_
    N = geometry.n_modes
    kernels = np.asarray(estimator.kernels_, np.float64)
    K = kernels.shape[0]
    if getattr(estimator, "_structure_constraint", None) == "cp":
        factors = [np.asarray(f, np.float64) for f in
                   estimator._kernel_params_and_head()[0]]  # (l..., [C], K) modes
        norms = [np.linalg.norm(f, axis=0) for f in factors]
        weights = np.prod(norms, axis=0)
        units = [f / np.where(n > 0, n, 1) for f, n in zip(factors, norms)]
        spatial = units[:N]
        channel = (units[N] if geometry.n_channels is not None
                   else np.ones((1, len(weights))))
        # a separable filter's response is the product of its modes'; the
        # unit channel vector adds a factor 1
        peaks = np.prod([frequency_peak(h.T[:, None], 1) for h in spatial], axis=0)
        filters = np.einsum("cr,r...->rc...", channel, _outer(spatial))
        order = np.argsort(-weights, kind="stable")
        return KernelSpectrum(weights[order], peaks[order], units[-1][:, order],
                              _layout(filters[order], geometry), order, "cp")
    U, s, Vt = np.linalg.svd(kernels.reshape(K, -1), full_matrices=False)
    filters = Vt.reshape(len(s), *(kernels.shape[1:] if geometry.n_channels is not None
                                   else (1, *kernels.shape[1:])))
    peaks = frequency_peak(filters, N)
    return KernelSpectrum(s, peaks, U, _layout(filters, geometry),
                          np.arange(len(s)), "svd")


def _outer(vectors: list[np.ndarray]) -> np.ndarray:
    """``(R, l_1, ..., l_N)``: per component the outer product of its vectors."""
    out = vectors[0].T
    for h in vectors[1:]:
        out = out[..., None] * h.T.reshape(h.shape[1], *[1] * (out.ndim - 1), -1)
    return out


def _layout(filters: np.ndarray, geometry) -> np.ndarray:
    """Drop the channel axis of filters without channels."""
    return filters if geometry.n_channels is not None else filters[:, 0]


@dataclass(frozen=True)
class TensorCompression:
    """The CP / Tucker compression of [Tensor generalization] and its checks.

    Attributes
    ----------
    estimator : estimator
        The compressed network (same family; a Tucker estimator keeps its
        ranks but for ``R_{N+1} = n_components``, a CP one gets
        ``rank = n_components``).
    n_components : int
        ``R_hat``, chosen by the rule (at least 1).
    n_params : int
        Parameters of the compressed network (``d`` of the bound).
    spectrum : KernelSpectrum
    eps, gamma : float
    cushions : tuple of float
        ``(zeta_1, zeta_2)``.
    guaranteed_change : float
        ``eps * max ||f0||``, what the rule guarantees for every output change
        on the sample (at most ``gamma / 2``).
    output_change, relative_change : ndarray of shape (n_samples,)
        Measured on the sample.
    excluded_fraction : float
        Fraction of samples below either cushion (with ``zeta > 0``): the
        guarantee does not cover them, and a bound pays for them.
    """

    estimator: object
    n_components: int
    n_params: int
    spectrum: KernelSpectrum
    eps: float
    gamma: float
    cushions: tuple
    guaranteed_change: float
    output_change: np.ndarray
    relative_change: np.ndarray
    excluded_fraction: float = 0.0


def _fitted_output_rank(estimator, spectrum: KernelSpectrum) -> int:
    """Components the fitted kernel has: its CP rank, its Tucker output rank,
    or the rank of the kernels unfolded along ``K``."""
    structure = getattr(estimator, "_structure_constraint", None)
    if structure == "tucker":
        return min(int(estimator.ranks_[-1]), len(spectrum.weights))
    if structure == "cp":
        return len(spectrum.weights)
    tol = spectrum.weights[0] * len(spectrum.weights) * np.finfo(float).eps \
        if len(spectrum.weights) else 0.0
    return max(1, int(np.sum(spectrum.weights > tol)))


def _truncated(estimator, spectrum: KernelSpectrum, j: int):
    """The estimator with the first ``j`` components of its kernel kept."""
    kernel_params, fc, intercept = estimator._kernel_params_and_head()
    kernel_params = [np.asarray(p, np.float64) for p in kernel_params]
    if spectrum.kind == "cp":
        keep = spectrum.order[:j]
        return estimator._with_network([f[:, keep] for f in kernel_params], fc,
                                       intercept, rank=j)
    U = spectrum.kernel_vectors[:, :j]
    if getattr(estimator, "_structure_constraint", None) == "tucker":
        *factors, core = kernel_params
        # output factor H -> U (U^T H): ranks kept but the last, now j
        core = np.moveaxis(np.tensordot(U.T @ factors[-1], core, axes=(1, -1)), 0, -1)
        ranks = (*core.shape[:-1], j)
        return estimator._with_network([*factors[:-1], U, core], fc, intercept,
                                       ranks=ranks)
    (stacked,) = kernel_params  # (l..., [C], K)
    truncated = stacked @ U @ U.T
    return estimator._with_network([truncated], fc, intercept)


def _svd_form_params(estimator, j: int) -> int:
    """Dense kernels kept as ``j`` components: ``j (K + C L)`` numbers, plus
    the FC layer and intercept as fitted."""
    g = estimator.geometry_
    n_out = estimator._n_out
    return (j * (estimator.n_kernels_ + g.n_kernel_entries)
            + estimator.n_kernels_ * g.n_cells * n_out
            + n_out * int(estimator.fit_intercept))


@dataclass(frozen=True)
class PruningRule:
    """What the rank rule needs that does not depend on the margin: the
    spectrum, the cushions and the norms, measured once on the sample."""

    spectrum: KernelSpectrum
    cushions: tuple
    excluded_fraction: float
    max_output: float
    scale: float  # zeta_1 ||A||_F zeta_2 ||Bt||_F / (L_act ||Bt||_2)
    n_fitted: int

    def components(self, gamma: float) -> tuple[int, float]:
        """``(R_hat, eps)`` at margin ``gamma`` (at least one component: a
        network without kernels is no estimator)."""
        eps = gamma / (2 * self.max_output) if self.max_output > 0 else np.inf
        j = next((j for j in range(1, self.n_fitted + 1)
                  if self.spectrum.noise_bound(j) <= eps * self.scale),
                 self.n_fitted)
        return j, float(eps)


def pruning_rule(estimator, X, *, zeta: float = 0.0) -> PruningRule:
    """Measure what the rank rule of :func:`tensor_compress` needs on ``X``."""
    from .stability import _check_zeta

    zeta = _check_zeta(zeta)
    if estimator.activation not in LIPSCHITZ:
        raise ValueError(
            f"activation={estimator.activation!r} has no Lipschitz constant over "
            "the whole line; the rank rule needs one: use "
            f"{sorted(LIPSCHITZ)}."
        )
    net = TwoLayerNetwork.of(estimator)
    Xv = validated_samples(estimator, X)
    z = net.activate(net.preactivations(Xv))
    f0 = net.top(z)
    n = Xv.shape[0]
    z_norm = np.linalg.norm(z.reshape(n, -1), axis=1)
    x_norm = np.linalg.norm(Xv.reshape(n, -1), axis=1)
    Bt = net.fc_matrix()
    A_norm, B_norm, B_spec = (np.linalg.norm(net.kernels), np.linalg.norm(Bt),
                              np.linalg.norm(Bt, 2))
    per_sample_1 = ratio(z_norm, A_norm * x_norm)
    per_sample_2 = ratio(np.linalg.norm(f0, axis=1), B_norm * z_norm)
    zeta_1 = np.quantile(per_sample_1, zeta, method="lower")
    zeta_2 = np.quantile(per_sample_2, zeta, method="lower")
    excluded = float(np.mean((per_sample_1 < zeta_1) | (per_sample_2 < zeta_2)))
    spectrum = kernel_spectrum(estimator)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (zeta_1 * A_norm * zeta_2 * B_norm
                 / (LIPSCHITZ[estimator.activation] * B_spec))
    return PruningRule(spectrum, (float(zeta_1), float(zeta_2)), excluded,
                       float(np.linalg.norm(f0, axis=1).max()),
                       float(np.nan_to_num(scale, posinf=np.inf)),
                       _fitted_output_rank(estimator, spectrum))


def prune(estimator, X, rule: PruningRule, gamma: float) -> TensorCompression:
    """The compression :func:`tensor_compress` makes, from a measured rule."""
    if gamma <= 0:
        raise ValueError(f"gamma={gamma!r} must be > 0.")
    j, eps = rule.components(gamma)
    compressed = _truncated(estimator, rule.spectrum, j)
    # the pruned network as its own structure or as j components, whichever
    # is smaller, and never more than the fitted one
    n_params = min(int(compressed.n_params_), _svd_form_params(estimator, j),
                   int(estimator.n_params_))
    change, relative = output_change(estimator, compressed, X)
    return TensorCompression(compressed, j, n_params, rule.spectrum, eps,
                             float(gamma), rule.cushions,
                             float(eps * rule.max_output), change, relative,
                             rule.excluded_fraction)


def tensor_compress(estimator, X, *, gamma: float, zeta: float = 0.0
                    ) -> TensorCompression:
    """Prune the kernel's smallest components as [Tensor generalization]'s
    rule says (its Algorithms 1 and 3, no fine-tuning) and check the result
    on ``X``.

    Parameters
    ----------
    estimator : fitted sktensorcnn estimator
        Any kernel structure; ``activation`` must be Lipschitz (not
        ``'squared_relu'``).
    X : array-like of shape ``(n_samples, *input_shape_)``
        The training samples.
    gamma : float
        Margin: every output may move by ``gamma / 2``.
    zeta : float in [0, 1), default=0.0
        Fraction of samples the cushions may leave out.

    Returns
    -------
    TensorCompression
    """
    if gamma <= 0:
        raise ValueError(f"gamma={gamma!r} must be > 0.")
    return prune(estimator, X, pruning_rule(estimator, X, zeta=zeta), gamma)
