"""Noise stability of a fitted network: the quantities of [Compression bounds].

For our two-layer network ``f(x) = Bt act(A * x) + b`` (pooling folded into
``Bt``, see :class:`~sktensorcnn.bounds._network.TwoLayerNetwork`) each
quantity is computed exactly, per sample:

* layer cushions (Def. 4): ``mu_1(x) = ||A * x|| / (||A||_F ||x||)`` and
  ``mu_2(x) = ||Bt z|| / (||Bt||_F ||z||)``, ``z = act(x1)``;
* activation contraction (Def. 6): ``c(x) = ||x1|| / ||act(x1)||``;
* the Jacobian of layer 2's output with respect to ``x1``,
  ``J(x) = Bt diag(act'(x1))``: its Frobenius norm, the interlayer cushion
  (Def. 8) ``mu_12(x) = sqrt(n^1) ||f0(x)|| / (||J||_F ||x1||)`` with ``n^1``
  the convolution output positions, and how well it is distributed over the
  positions (Def. 9): ``beta(x) = sqrt(n^1) max_p ||J[:, :, p]||_F / ||J||_F``.
  Def. 8 writes ``||J x1||``, equal to ``||f0||`` for the positively homogeneous
  activations (relu, leaky_relu, identity); the proof's chain needs
  ``||f0||``, which is what is computed for every activation;
* interlayer smoothness (Def. 7): how far layer 2 is from its linearization
  under a perturbation ``eta`` of ``x1``,
  ``rho(x) = ||eta|| ||f0(x)|| / (||x1|| ||f0(x1 + eta) - f0(x1) - J eta||)``
  (``f0`` the bias-free output; for the positively homogeneous activations,
  relu, leaky_relu and identity, this is the paper's ``M(x + eta) - J(x +
  eta)``).

Biases: the convolution has none, and the intercept cancels in every
difference, so the quantities use the bias-free output ``f0 = f - b``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from ._network import TwoLayerNetwork, ratio, validated_samples

__all__ = ["NoiseStability", "noise_sensitivity", "noise_stability"]


def _chunks(n: int, per_sample: int, budget: int = 1 << 22):
    step = max(1, budget // max(per_sample, 1))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _quantile(values: np.ndarray, q: float, method: str) -> float:
    """A sample's own value (``method`` 'lower' or 'higher'; ``inf`` kept)."""
    return float(np.quantile(values, q, method=method))


@dataclass(frozen=True)
class NoiseStability:
    """Noise-stability quantities of a fitted network on a sample.

    Per-sample arrays (one entry per sample of ``X``) and the worst cases over
    all but a fraction ``zeta`` of the samples ([Compression bounds],
    Corollary C.1: a bound measured on a ``1 - zeta`` fraction pays ``zeta``).

    Attributes
    ----------
    layer_cushion : ndarray of shape (n_samples, 2)
        ``mu_1(x)`` (convolution) and ``mu_2(x)`` (pooling + FC).
    interlayer_cushion : ndarray of shape (n_samples,)
        ``mu_12(x)``, from the convolution's output to the network's output.
    activation_contraction : ndarray of shape (n_samples,)
        ``c(x) = ||x1|| / ||act(x1)||``.
    jacobian_norm : ndarray of shape (n_samples,)
        ``||J(x)||_F``.
    jacobian_beta : ndarray of shape (n_samples,)
        ``beta(x) >= 1``; 1 when the Jacobian is spread evenly over positions.
    interlayer_smoothness : ndarray of shape (n_samples,)
        ``rho(x)`` under Gaussian perturbations of relative size
        ``perturbation_size`` (the smallest over the draws); ``inf`` for a
        linear second layer.
    perturbation_size : float
    n_kernels, n_outputs, n_positions, overlap : int
        ``K = h^1``, ``M``, ``n^1 = prod m_j`` and ``omega = prod ceil(l_j /
        s_j)``.
    zeta : float
        Fraction of samples the summaries leave out.
    """

    layer_cushion: np.ndarray
    interlayer_cushion: np.ndarray
    activation_contraction: np.ndarray
    jacobian_norm: np.ndarray
    jacobian_beta: np.ndarray
    interlayer_smoothness: np.ndarray
    perturbation_size: float
    n_kernels: int
    n_outputs: int
    n_positions: int
    overlap: int
    zeta: float = 0.0

    def _low(self, values):
        return _quantile(values, self.zeta, "lower")

    def _high(self, values):
        return _quantile(values, 1.0 - self.zeta, "higher")

    @property
    def layer_cushions(self) -> tuple[float, float]:
        """``(mu_1, mu_2)``: the smallest per-sample cushions (but ``zeta``)."""
        return self._low(self.layer_cushion[:, 0]), self._low(self.layer_cushion[:, 1])

    @property
    def min_interlayer_cushions(self) -> tuple[float, float]:
        """``(mu_1->, mu_2->)``, clipped as Def. 5 defines them:
        ``min(1 / sqrt(K), mu_12)`` and ``1 / sqrt(M)``."""
        return (min(1.0 / np.sqrt(self.n_kernels), self._low(self.interlayer_cushion)),
                float(1.0 / np.sqrt(self.n_outputs)))

    @property
    def min_interlayer_cushion_raw(self) -> float:
        """``mu_12`` before the clipping at ``1 / sqrt(K)``."""
        return self._low(self.interlayer_cushion)

    @property
    def contraction(self) -> float:
        """``c``: the largest per-sample contraction (but ``zeta``)."""
        return self._high(self.activation_contraction)

    @property
    def beta(self) -> float:
        """``beta``: the largest per-sample value (but ``zeta``)."""
        return self._high(self.jacobian_beta)

    @property
    def smoothness(self) -> float:
        """``rho_delta``: the smallest per-sample value (but ``zeta``)."""
        return self._low(self.interlayer_smoothness)

    @property
    def excluded_fraction(self) -> float:
        """Fraction of samples outside at least one worst case: what a bound
        measured with these summaries pays (each summary leaves out its own
        ``zeta``, so together they may leave out more)."""
        (mu_1, mu_2), mu_12 = self.layer_cushions, self.min_interlayer_cushion_raw
        outside = ((self.layer_cushion[:, 0] < mu_1) | (self.layer_cushion[:, 1] < mu_2)
                   | (self.interlayer_cushion < mu_12)
                   | (self.activation_contraction > self.contraction)
                   | (self.jacobian_beta > self.beta))
        return float(np.mean(outside))

    def summary(self) -> dict:
        """Every worst case, by name."""
        mu_1, mu_2 = self.layer_cushions
        to_1, to_2 = self.min_interlayer_cushions
        return {"layer_cushion_1": mu_1, "layer_cushion_2": mu_2,
                "min_interlayer_cushion_1": to_1, "min_interlayer_cushion_2": to_2,
                "min_interlayer_cushion_1_raw": self.min_interlayer_cushion_raw,
                "activation_contraction": self.contraction,
                "jacobian_beta": self.beta,
                "interlayer_smoothness": self.smoothness, "zeta": self.zeta,
                "excluded_fraction": self.excluded_fraction}


def _check_zeta(zeta) -> float:
    if not 0.0 <= float(zeta) < 1.0:
        raise ValueError(f"zeta={zeta!r} must be in [0, 1): the fraction of "
                         "samples the worst cases may leave out.")
    return float(zeta)


def noise_stability(estimator, X, *, zeta: float = 0.0,
                    perturbation_size: float = 0.1, n_draws: int = 8,
                    random_state=None) -> NoiseStability:
    """Noise-stability quantities of a fitted estimator on samples ``X``.

    Layer cushions, interlayer cushion, activation contraction, the Jacobian's
    norm and distribution, and interlayer smoothness ([Compression bounds],
    Defs. 4-9), exact for the two-layer network conv -> activation -> average
    pool -> FC (the pooling folds into the FC layer).  Works for regressors and
    classifiers alike.

    Parameters
    ----------
    estimator : fitted sktensorcnn estimator
    X : array-like of shape ``(n_samples, *input_shape_)``
        Usually the training samples: the bounds measure the network on them.
    zeta : float in [0, 1), default=0.0
        Fraction of samples each worst case (``summary()``) may leave out;
        ``excluded_fraction`` is how many all of them leave out together.
    perturbation_size : float, default=0.1
        Relative size ``||eta|| / ||x1||`` of the Gaussian perturbations that
        measure interlayer smoothness (a stand-in for the compression's noise).
    n_draws : int, default=8
        Perturbations per sample; the smallest ``rho`` is kept (0 skips the
        measure: ``rho = inf``; a linear
        second layer, ``activation='identity'``, has ``rho = inf`` exactly).
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    NoiseStability
    """
    zeta = _check_zeta(zeta)
    if perturbation_size <= 0:
        raise ValueError(f"perturbation_size={perturbation_size!r} must be > 0.")
    net = TwoLayerNetwork.of(estimator)
    X = validated_samples(estimator, X)
    rng = check_random_state(random_state)
    n, K, n1 = X.shape[0], net.n_kernels, net.n_positions
    Bt = net.fc_matrix()
    column_sq = (Bt ** 2).sum(axis=0).reshape(K, n1)  # sum over outputs
    kernel_norm = np.linalg.norm(net.kernels)
    fc_norm = np.linalg.norm(Bt)
    out = {name: np.empty(n) for name in ("mu1", "mu2", "mu12", "c", "jn", "beta",
                                           "rho")}
    for rows in _chunks(n, K * n1 * (n_draws + 3)):
        x1 = net.preactivations(X[rows])
        m = x1.shape[0]
        x1 = x1.reshape(m, K, n1)
        z = net.activate(x1)
        slope = net.slope(x1)
        f0 = net.top(z)
        x_norm = np.linalg.norm(X[rows].reshape(m, -1), axis=1)
        x1_norm = np.linalg.norm(x1.reshape(m, -1), axis=1)
        z_norm = np.linalg.norm(z.reshape(m, -1), axis=1)
        f0_norm = np.linalg.norm(f0, axis=1)
        out["mu1"][rows] = ratio(x1_norm, kernel_norm * x_norm)
        out["mu2"][rows] = ratio(f0_norm, fc_norm * z_norm)
        out["c"][rows] = ratio(x1_norm, z_norm)
        per_position = ((slope ** 2) * column_sq).sum(axis=1)  # (m, n1)
        jacobian_norm = np.sqrt(per_position.sum(axis=1))
        out["jn"][rows] = jacobian_norm
        out["beta"][rows] = ratio(np.sqrt(n1 * per_position.max(axis=1)),
                                   jacobian_norm)
        out["mu12"][rows] = ratio(np.sqrt(n1) * f0_norm, jacobian_norm * x1_norm)
        rho = np.full(m, np.inf)
        for _ in range(n_draws if estimator.activation != "identity" else 0):
            eta = rng.standard_normal(x1.shape)
            eta *= (perturbation_size * x1_norm
                    / np.maximum(np.linalg.norm(eta.reshape(m, -1), axis=1),
                                 1e-300))[:, None, None]
            residual = net.top(net.activate(x1 + eta) - z - slope * eta)
            rho = np.minimum(rho, ratio(perturbation_size * x1_norm * f0_norm,
                                         x1_norm * np.linalg.norm(residual, axis=1)))
        out["rho"][rows] = rho
    return NoiseStability(
        layer_cushion=np.column_stack([out["mu1"], out["mu2"]]),
        interlayer_cushion=out["mu12"], activation_contraction=out["c"],
        jacobian_norm=out["jn"], jacobian_beta=out["beta"],
        interlayer_smoothness=out["rho"], perturbation_size=float(perturbation_size),
        n_kernels=K, n_outputs=net.n_outputs, n_positions=n1, overlap=net.overlap,
        zeta=zeta,
    )


def noise_sensitivity(estimator, X, *, sigma: float = 1e-2, n_draws: int = 32,
                      random_state=None) -> np.ndarray:
    """Gaussian noise sensitivity of the whole network at each sample
    ([Compression bounds], Def. 3), divided by ``sigma**2``.

    ``psi(x) = E ||f0(x + sigma ||x|| g) - f0(x)||^2 / (sigma^2 ||f0(x)||^2)``,
    ``g ~ N(0, I)``, by Monte Carlo (``f0`` the bias-free output).  For a linear
    network ``f0 = M x`` it equals ``||M||_F^2 ||x||^2 / ||M x||^2`` (Prop. 3.1),
    at least the stable rank of ``M``: a network that passes its inputs' own
    directions on but damps isotropic noise has a small sensitivity.

    Returns
    -------
    ndarray of shape (n_samples,)
    """
    if sigma <= 0:
        raise ValueError(f"sigma={sigma!r} must be > 0.")
    net = TwoLayerNetwork.of(estimator)
    X = validated_samples(estimator, X)
    rng = check_random_state(random_state)

    def f0(samples):
        return net.top(net.activate(net.preactivations(samples)))

    clean = f0(X)
    scale = sigma * np.linalg.norm(X.reshape(X.shape[0], -1), axis=1)
    total = np.zeros(X.shape[0])
    for _ in range(n_draws):
        noise = rng.standard_normal(X.shape) * scale.reshape(-1, *[1] * (X.ndim - 1))
        total += ((f0(X + noise) - clean) ** 2).sum(axis=1)
    return ratio(total / n_draws, sigma ** 2 * (clean ** 2).sum(axis=1))
