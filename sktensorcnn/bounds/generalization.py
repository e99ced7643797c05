"""Generalization bounds of fitted classifiers, by compression.

A network that can be replaced, on its training sample, by one described with
few parameters generalizes like that small one ([Compression bounds],
Theorem 2.1).  Three ways to get the small one, each a function here:

* :func:`compression_bound` -- random projection ([Compression bounds],
  Theorem 5.1), its size set by the network's noise stability;
* :func:`tensor_compression_bound` -- pruning the kernel's CP / SVD
  components ([Tensor generalization], Theorem 4.5);
* :func:`quantized_bound` -- the parameters themselves, rounded onto a grid
  (Theorem 2.1 applied directly, with every constant).

The first two are computed as the papers' experiments compute them: their
``O~`` hides logarithms and constants, so their values are *estimates* of a
bound's size, for comparisons and trends; only :func:`quantized_bound` is a
bound that holds with probability ``1 - delta`` as printed.
:func:`norm_bounds` gives the norm-based bounds the papers compare with, and
:func:`effective_params` [Compression bounds]' Table 1 for regressors too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ._network import TwoLayerNetwork, conv_operator, operator_norm, validated_samples
from .margins import _check_classifier, label_codes, margins_of_outputs
from .quantization import EXPONENTS, quantize
from .stability import NoiseStability, _check_zeta, noise_stability
from .tensor import prune, pruning_rule

__all__ = ["BoundReport", "compression_bound", "effective_params", "norm_bounds",
           "quantized_bound", "tensor_compression_bound"]

#: Margins tried when ``gamma=None``: ``max ||f0|| * 2^(-t/2)``, t = 0..19.
N_GAMMAS = 20


@dataclass(frozen=True)
class BoundReport:
    """A generalization bound and every term of it.

    Attributes
    ----------
    bound : float
        Bound on the test error of :attr:`estimator` (below 1: non-vacuous).
    empirical_loss : float
        The training term: ``L_gamma`` of the fitted network, or the training
        error of the quantized one.
    complexity : float
        The term added to it.
    gamma : float
        The margin (0 for :func:`quantized_bound`).
    n_samples : int
        ``m``.
    estimator : estimator
        The network the bound is about: the compressed one where it is built
        (the pruned or the quantized network); the fitted one for
        :func:`compression_bound`, whose compression is not built.
    terms : dict
        Every quantity that entered the bound, by name.
    conditions : dict
        The conditions the bound needs, each ``True`` where it holds on the
        sample.
    kind : str
    rigorous : bool
        Whether the bound holds as printed (with probability ``1 - delta``),
        or is the papers' estimate with logarithms and constants dropped.
    """

    bound: float
    empirical_loss: float
    complexity: float
    gamma: float
    n_samples: int
    estimator: object
    terms: dict = field(default_factory=dict)
    conditions: dict = field(default_factory=dict)
    kind: str = ""
    rigorous: bool = False

    @property
    def vacuous(self) -> bool:
        """The bound says nothing: it is at least 1."""
        return self.bound >= 1.0


def _outputs(estimator, X):
    """Bias-free outputs ``f0`` and outputs ``f`` on validated samples."""
    net = TwoLayerNetwork.of(estimator)
    Xv = validated_samples(estimator, X)
    f0 = net.top(net.activate(net.preactivations(Xv)))
    return net, Xv, f0, f0 + net.intercept


def _margin_sample(estimator, X, y, zeta, what):
    """Checks, then the network, the margins and ``max ||f0||`` on the sample."""
    _check_classifier(estimator, what)
    zeta = _check_zeta(zeta)
    net, _, f0, f = _outputs(estimator, X)
    margin = margins_of_outputs(f, label_codes(estimator, y))
    return net, margin, float(np.linalg.norm(f0, axis=1).max()), zeta


def _gammas(f_max: float, gamma):
    if gamma is not None:
        if gamma <= 0:
            raise ValueError(f"gamma={gamma!r} must be > 0 (or None to pick it).")
        return [float(gamma)], 1
    return [f_max * 2.0 ** (-t / 2) for t in range(N_GAMMAS)], N_GAMMAS


def _layer_counts(estimator) -> tuple[int, int]:
    """Fitted parameters of the convolution and of the FC layer."""
    fc = estimator._n_out * estimator.n_kernels_ * estimator.geometry_.n_cells
    intercept = estimator._n_out * int(estimator.fit_intercept)
    return int(estimator.n_params_) - fc - intercept, fc


#: Activations the noise-stability chain covers: ``act(0) = 0`` and
#: 1-Lipschitz ([Compression bounds], Lemma 3's proof).
STABLE_ACTIVATIONS = ("identity", "relu", "leaky_relu", "tanh")


def _check_activation(estimator, what: str) -> None:
    if estimator.activation not in STABLE_ACTIVATIONS:
        raise ValueError(
            f"{what} needs an activation with act(0) = 0 that is 1-Lipschitz, "
            f"as the noise-stability argument does; activation="
            f"{estimator.activation!r} is not one. Use one of "
            f"{list(STABLE_ACTIVATIONS)}, or tensor_compression_bound / "
            "quantized_bound, which need no such property."
        )


def effective_params(estimator, X, *, zeta: float = 0.0,
                     stability: NoiseStability | None = None) -> list[dict]:
    """Effective number of parameters per layer ([Compression bounds],
    Table 1) against the actual count.

    ``eff_i = c^2 beta_i^2 omega_i / (mu_i^2 mu_i->^2)``: layer 1 (the
    convolution, ``omega = prod ceil(l_j / s_j)``) and layer 2 (pooling + FC,
    ``beta = omega = 1``).  ``c`` is the activation contraction; the
    ``'eff_per_layer'`` column uses the contraction of each layer's own input
    instead (1 for the raw input of layer 1), which is what the proof's chain
    uses.  Works for regressors and classifiers whose activation the argument
    covers (:data:`STABLE_ACTIVATIONS`).

    Returns
    -------
    list of dict
        One per layer: ``layer``, ``eff``, ``eff_per_layer``, ``actual`` and
        ``ratio`` (``eff / actual``; below 1 the layer compresses).
    """
    _check_activation(estimator, "effective_params")
    s = stability if stability is not None else noise_stability(estimator, X, zeta=zeta)
    c = s.contraction
    (mu_1, mu_2), (to_1, to_2) = s.layer_cushions, s.min_interlayer_cushions
    conv_params, fc_params = _layer_counts(estimator)
    rows = []
    for layer, (mu, to, beta, omega, c_own, actual) in enumerate(
            [(mu_1, to_1, s.beta, s.overlap, 1.0, conv_params),
             (mu_2, to_2, 1.0, 1, c, fc_params)], start=1):
        scale = beta ** 2 * omega / (mu ** 2 * to ** 2)
        rows.append({"layer": layer, "eff": c ** 2 * scale,
                     "eff_per_layer": c_own ** 2 * scale, "actual": actual,
                     "ratio": c ** 2 * scale / actual})
    return rows


def compression_bound(estimator, X, y, *, gamma: float | None = None,
                      delta: float = 0.05, zeta: float = 0.0,
                      keep_depth: bool = False, random_state=None) -> BoundReport:
    """The noise-stability compression bound of [Compression bounds]
    (Theorem 5.1) for a fitted classifier, on its training sample.

    ``L_0(g) <= L_gamma(f) + z + sqrt(q / m) + sqrt(log(T / delta) / (2 m))``
    with ``q = max ||f0||^2 / gamma^2 sum_i eff_i`` (:func:`effective_params`),
    ``T`` the margins tried and ``z`` the fraction of samples the stability
    summaries leave out together.  ``q`` is the quantity the paper plots: the
    number of parameters of the random-projection compression ``g`` (Lemma 14)
    up to its logarithms and constants -- the convolution's constant ``Q`` is
    not given, so the actual size of ``g`` is not known, and ``g`` is not
    built.  As in the paper's experiments the depth factor ``d^2 = 4`` is
    dropped too (unless ``keep_depth``): the value is an estimate of the
    bound's size, for comparisons and trends, not a guarantee (``q`` also
    depends on the sample through the stability quantities).  The activation
    must satisfy ``act(0) = 0`` and be 1-Lipschitz (relu, leaky_relu, tanh,
    identity).

    Parameters
    ----------
    estimator : fitted sktensorcnn classifier
    X, y : the training sample
    gamma : float or None, default=None
        Margin; ``None`` picks the best of ``max ||f0|| 2^(-t/2)``,
        ``t = 0..19`` (paying ``log 20``).
    delta : float, default=0.05
    zeta : float in [0, 1), default=0.0
        Fraction of samples each stability quantity may leave out; the bound
        adds the fraction they leave out together.
    keep_depth : bool, default=False
        Keep the ``d^2`` factor of the theorem.
    random_state : int, RandomState instance or None
        For the interlayer-smoothness probes, perturbations of the
        convolution's output of relative size ``eps = gamma / (sqrt(2) max
        ||f0||)``, the output error the compression is allowed.

    Returns
    -------
    BoundReport
        ``estimator`` is the fitted network ``f`` itself (``g`` is not built).
        ``terms`` holds ``q``, ``eff``, the stability summary, ``max_output``
        and the number of projections Lemma 3 asks for in the FC layer
        (``projections_fc``; the convolution's needs Lemma 14's unknown
        constant); ``conditions`` whether ``rho_delta >= 3 d`` (interlayer smoothness at
        the compression's noise level) and whether ``gamma`` can be reached
        (``gamma^2 <= 2 max ||f0||^2``).
    """
    _check_activation(estimator, "compression_bound")
    net, margin, f_max, zeta = _margin_sample(estimator, X, y, zeta,
                                              "compression_bound")
    m = len(margin)
    depth = 2
    stability = noise_stability(estimator, X, zeta=zeta, n_draws=0)
    left_out = stability.excluded_fraction
    rows = effective_params(estimator, X, stability=stability)
    eff = sum(row["eff"] for row in rows)
    candidates, T = _gammas(f_max, gamma)
    best = None
    for g in candidates:
        q = (depth ** 2 if keep_depth else 1) * f_max ** 2 / g ** 2 * eff
        loss = float(np.mean(margin <= g))
        complexity = np.sqrt(q / m) + np.sqrt(np.log(T / delta) / (2 * m))
        if best is None or loss + left_out + complexity < best[0]:
            best = (loss + left_out + complexity, g, q, loss, complexity)
    bound, g, q, loss, complexity = best
    # Lemma 3's FC projections at this margin: eps_2 = eps mu_2 mu_2-> / (6 c d)
    eps = g / (np.sqrt(2) * f_max)
    eta = delta / (6 * depth ** 2 * max(net.n_kernels * net.n_positions, 1) ** 2 * m)
    mu_2, to_2 = stability.layer_cushions[1], stability.min_interlayer_cushions[1]
    eps_fc = eps * mu_2 * to_2 / (6 * stability.contraction * depth)
    terms = {"q": q, "eff": [row["eff"] for row in rows], "max_output": f_max,
             "n_gammas": T, "delta": delta, "epsilon": eps,
             "projections_fc": int(np.ceil(np.log(1 / eta) / eps_fc ** 2)),
             **stability.summary()}
    # interlayer smoothness at the relative error the compression may add
    smooth = noise_stability(estimator, X, zeta=zeta, perturbation_size=min(eps, 1.0),
                             random_state=random_state).smoothness
    terms["interlayer_smoothness"] = smooth
    conditions = {"interlayer_smoothness >= 3d": bool(smooth >= 3 * depth),
                  "gamma reachable": bool(g ** 2 <= 2 * f_max ** 2)}
    return BoundReport(float(bound), loss, float(complexity), float(g), m, estimator,
                       terms, conditions, "noise-stability compression", False)


def tensor_compression_bound(estimator, X, y, *, gamma: float | None = None,
                             delta: float = 0.05, zeta: float = 0.0,
                             n_bits: int = 8) -> BoundReport:
    """The CP / Tucker compression bound of [Tensor generalization]
    (Theorem 4.5) for a fitted classifier, on its training sample.

    The kernel's smallest components are pruned by the paper's rule
    (:func:`~sktensorcnn.bounds.tensor_compress`), which keeps every output
    within ``gamma / 2`` on the sample, so the pruned network ``g`` errs only
    where ``f`` has a margin of at most ``gamma``:
    ``L_0(g) <= L_gamma(f) + z + sqrt(d / m)``, ``d`` the pruned network's
    parameter count and ``z`` the fraction of samples the cushions leave out
    (with ``zeta > 0``): the paper's plotted form, logarithms dropped, an
    estimate.
    ``terms['quantized']`` holds the rigorous version:
    :func:`quantized_bound` of the pruned network (``n_bits`` per parameter),
    paying for the choice among the possible ranks.

    Returns
    -------
    BoundReport
    """
    _, margin, f_max, zeta = _margin_sample(estimator, X, y, zeta,
                                            "tensor_compression_bound")
    m = len(margin)
    candidates, T = _gammas(f_max, gamma)
    rule = pruning_rule(estimator, X, zeta=zeta)
    pruned_by_rank: dict = {}  # the rule keeps the same ranks over many margins
    best = None
    for g in candidates:
        j = rule.components(g)[0]
        if j not in pruned_by_rank:
            pruned_by_rank[j] = prune(estimator, X, rule, g)
        pruned = pruned_by_rank[j]
        loss = float(np.mean(margin <= g)) + rule.excluded_fraction
        complexity = np.sqrt(pruned.n_params / m) + np.sqrt(np.log(T / delta) / (2 * m))
        if best is None or loss + complexity < best[0]:
            best = (loss + complexity, g, j, loss, complexity)
    bound, g, j, loss, complexity = best
    # the network pruned to rank j, with the margin chosen and its eps
    eps = rule.components(g)[1]
    pruned = dataclasses.replace(pruned_by_rank[j], gamma=float(g), eps=eps,
                                 guaranteed_change=float(eps * rule.max_output))
    n_ranks = len(pruned.spectrum.weights) + 1
    quantized = quantized_bound(pruned.estimator, X, y, n_bits=n_bits, delta=delta,
                                n_configs=n_ranks * T)
    spectrum = pruned.spectrum
    j = pruned.n_components
    terms = {"n_components": j, "n_components_fitted": len(spectrum.weights),
             "d": pruned.n_params, "epsilon": pruned.eps, "cushions": pruned.cushions,
             "tensor_noise_bound": spectrum.noise_bound(j),
             "tensorization_factor": spectrum.tensorization_factor(j),
             "max_output": f_max,
             "max_output_change": float(pruned.output_change.max()),
             "n_gammas": T, "delta": delta, "zeta": zeta,
             "excluded_fraction": pruned.excluded_fraction, "quantized": quantized}
    conditions = {"output change <= gamma/2 on the sample":
                  bool(pruned.output_change.max() <= g / 2 * (1 + 1e-9)),
                  "gamma reachable": bool(g < 2 * f_max)}
    return BoundReport(float(bound), loss, float(complexity), float(g), m,
                       pruned.estimator, terms, conditions, "tensor compression", False)


def quantized_bound(estimator, X, y, *, n_bits: int = 8, delta: float = 0.05,
                    n_configs: int = 1) -> BoundReport:
    """Test-error bound of the fitted classifier's parameters rounded onto a
    fixed grid ([Compression bounds], Theorem 2.1, every constant kept).

    The rounded network ``g`` is one of ``r^q`` networks (``q`` parameters,
    ``r = 2^n_bits`` values each, plus one grid range per parameter array among
    ``len(EXPONENTS)``), so with probability at least ``1 - delta`` over the
    training sample (Hoeffding and a union bound)::

        L_0(g) <= L_0_train(g) + sqrt((q log r + A log E + log(n_configs / delta))
                                      / (2 m))

    (``A`` parameter arrays, ``E = len(EXPONENTS)`` grid ranges each).

    This holds as printed, whatever the training did, provided the
    architecture (geometry, ranks, ``n_bits``) was one of ``n_configs``
    chosen before seeing the sample.  ``q`` is the Tucker / CP parameter count
    (the model complexity ``d_M`` for linear Tucker / CP networks): the fewer
    parameters, the tighter.

    Parameters
    ----------
    estimator : fitted sktensorcnn classifier
    X, y : the training sample
    n_bits : int, default=8
    delta : float, default=0.05
    n_configs : int, default=1
        Architectures the choice was made among (grid-search candidates).

    Returns
    -------
    BoundReport
        ``estimator`` is the quantized network ``g``; ``terms['fitted_error']``
        the training error of the fitted one.
    """
    _check_classifier(estimator, "quantized_bound")
    if not 0 < delta < 1:
        raise ValueError(f"delta={delta!r} must be in (0, 1).")
    if int(n_configs) < 1:
        raise ValueError(f"n_configs={n_configs!r} must be >= 1.")
    quantized = quantize(estimator, n_bits=n_bits)
    codes = label_codes(estimator, y)
    m = len(codes)
    error = float(np.mean(margins_of_outputs(quantized.estimator._decision(X), codes)
                          <= 0))
    fitted_error = float(np.mean(margins_of_outputs(estimator._decision(X), codes)
                                 <= 0))
    numerator = (quantized.n_params * n_bits * np.log(2)
                 + quantized.n_arrays * np.log(len(EXPONENTS))
                 + np.log(int(n_configs) / delta))
    complexity = float(np.sqrt(numerator / (2 * m)))
    terms = {"q": quantized.n_params, "n_bits": n_bits, "n_arrays": quantized.n_arrays,
             "exponents": quantized.exponents, "fitted_error": fitted_error,
             "delta": delta, "n_configs": int(n_configs)}
    return BoundReport(error + complexity, error, complexity, 0.0, m,
                       quantized.estimator, terms, {}, "quantized parameters", True)


def norm_bounds(estimator, X, *, gamma: float) -> dict:
    """Sample-complexity numerators of the norm-based bounds [Compression
    bounds] compares with (its Figure 2), and its own.

    Divide by ``m`` and take the square root for a generalization-gap term.
    Each layer is the linear map it is: layer 1 the convolution as a matrix
    from the input to its ``K n^1`` outputs (zero padding and stride
    included), layer 2 the pooling + FC matrix ``Bt``.  Norms are those of
    these matrices, computed exactly: spectral (by iteration for the
    convolution), Frobenius, ``||.||_{1,inf}`` (the largest l1 norm of a row)
    and ``||.||_{1,2}`` (the sum of the rows' l2 norms); ``h_i`` is a layer's
    number of outputs.  The margin bounds scale with ``max ||x||^2 /
    gamma^2``.

    Returns
    -------
    dict
        ``'l1_inf'`` (Bartlett & Mendelson 2002), ``'frobenius'`` (Neyshabur et
        al. 2015), ``'spectral_l12'`` (Bartlett et al. 2017), ``'spectral_fro'``
        (Neyshabur et al. 2017), ``'compression'`` ([Compression bounds],
        ``q`` of :func:`compression_bound`) and ``'n_params'``.
    """
    if gamma <= 0:
        raise ValueError(f"gamma={gamma!r} must be > 0.")
    net, Xv, f0, _ = _outputs(estimator, X)
    x_max = float(np.linalg.norm(Xv.reshape(len(Xv), -1), axis=1).max())
    Bt = net.fc_matrix()
    # rows of the convolution's matrix: one per (kernel, position), holding the
    # kernel's entries that meet the (unpadded) input there
    ones = np.ones(conv_operator(net.kernels, net.geometry).shape[1])
    row_l1 = conv_operator(np.abs(net.kernels), net.geometry) @ ones
    row_sq = conv_operator(net.kernels ** 2, net.geometry) @ ones
    spectral = [operator_norm(conv_operator(net.kernels, net.geometry)),
                float(np.linalg.norm(Bt, 2))]
    frob = [float(np.sqrt(row_sq.sum())), float(np.linalg.norm(Bt))]
    l1_inf = [float(row_l1.max()), float(np.abs(Bt).sum(axis=1).max())]
    l12 = [float(np.sqrt(row_sq).sum()), float(np.linalg.norm(Bt, axis=1).sum())]
    widths = [net.n_kernels * net.n_positions, net.n_outputs]
    scale = x_max ** 2 / gamma ** 2
    f_max = float(np.linalg.norm(f0, axis=1).max())
    eff = sum(row["eff"] for row in effective_params(estimator, X))
    return {
        "l1_inf": scale * np.prod(np.square(l1_inf)),
        "frobenius": scale * np.prod(np.square(frob)),
        "spectral_l12": scale * np.prod(np.square(spectral))
        * sum((b / s) ** 2 for b, s in zip(l12, spectral)),
        "spectral_fro": scale * np.prod(np.square(spectral))
        * sum(h * (f / s) ** 2 for h, f, s in zip(widths, frob, spectral)),
        "compression": f_max ** 2 / gamma ** 2 * eff,
        "n_params": int(estimator.n_params_),
    }
