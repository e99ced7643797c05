"""First-order solvers by epochs: momentum gradient descent and Adam.

Both run over a list of parameter arrays with an objective evaluated on a subset of
the samples, ``objective(params, rows) -> (value, gradients)``.  ``'gd'`` takes one
full-batch step per epoch with heavy-ball momentum, as in the papers' experiments
([Compressed CNNs] Sec. 4.1: learning rate 0.01, momentum 0.9); ``'adam'`` takes one
step per
mini-batch.  Stopping and early stopping follow scikit-learn's ``MLPRegressor``:
training stops when the epoch loss (or, with early stopping, the validation score)
has not improved by ``tol`` for ``n_iter_no_change`` consecutive epochs, and early
stopping restores the best parameters seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ._result import SolverResult, stop_requested

#: Growth of the training loss over its first epoch's value taken as
#: divergence (a step size far too large), not noise.
DIVERGED = 1e4


@dataclass
class OptimizerState:
    """What an optimizer carries between epochs (and between ``partial_fit`` calls).

    Attributes
    ----------
    velocity : list of ndarray
        Momentum buffers (``'gd'``) or first moments (``'adam'``).
    second_moment : list of ndarray
        Adam's second moments (empty for ``'gd'``).
    n_steps : int
        Steps taken, for Adam's bias correction.
    """

    velocity: list[np.ndarray] = field(default_factory=list)
    second_moment: list[np.ndarray] = field(default_factory=list)
    n_steps: int = 0


@dataclass
class EpochResult(SolverResult):
    """:class:`SolverResult` with the by-epoch quantities.

    Attributes
    ----------
    validation_scores : list of float
        Validation score after each epoch (early stopping only).
    best_loss : float
        Lowest epoch loss.
    state : OptimizerState
    """

    validation_scores: list[float] = field(default_factory=list)
    best_loss: float = np.inf
    state: OptimizerState = field(default_factory=OptimizerState)


def _step(method, params, grads, state, learning_rate, momentum, betas, epsilon):
    if not state.velocity:
        state.velocity = [np.zeros_like(p) for p in params]
        if method == "adam":
            state.second_moment = [np.zeros_like(p) for p in params]
    state.n_steps += 1
    if method == "gd":
        for j, g in enumerate(grads):
            state.velocity[j] = momentum * state.velocity[j] - learning_rate * g
            params[j] = params[j] + state.velocity[j]
        return
    beta1, beta2 = betas
    t = state.n_steps
    rate = learning_rate * np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
    for j, g in enumerate(grads):
        state.velocity[j] = beta1 * state.velocity[j] + (1.0 - beta1) * g
        state.second_moment[j] = beta2 * state.second_moment[j] + (1.0 - beta2) * g * g
        params[j] = params[j] - rate * state.velocity[j] / (
            np.sqrt(state.second_moment[j]) + epsilon
        )


def train_by_epochs(
    objective: Callable[[list[np.ndarray], np.ndarray], tuple[float, list]],
    params: list[np.ndarray],
    n_samples: int,
    *,
    method: str = "adam",
    learning_rate: float = 0.001,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    epsilon: float = 1e-8,
    batch_size: int = 200,
    shuffle: bool = True,
    max_iter: int = 200,
    tol: float = 1e-4,
    n_iter_no_change: int = 10,
    validation_score: Callable[[list[np.ndarray]], float] | None = None,
    rng: np.random.RandomState | None = None,
    state: OptimizerState | None = None,
    verbose: int = 0,
    epoch_order: Callable[[np.random.RandomState], np.ndarray] | None = None,
    monitor: Callable[[list], bool] | None = None,
) -> EpochResult:
    """Run up to ``max_iter`` epochs of ``'gd'`` or ``'adam'``.

    Parameters
    ----------
    objective : callable
        ``objective(params, rows)``: mean loss over the samples ``rows`` plus the
        penalty, and its gradients.
    params : list of ndarray
        Starting parameters (not modified).
    n_samples : int
    method : {'gd', 'adam'}
    learning_rate, momentum, betas, epsilon : float
    batch_size : int
        Samples per Adam step (``'gd'`` always uses the full batch).
    shuffle : bool
        Reshuffle the samples every epoch (Adam).
    max_iter : int
        Maximum number of epochs.
    tol, n_iter_no_change : float, int
        Stop when the tracked quantity has not improved by ``tol`` for
        ``n_iter_no_change`` consecutive epochs.
    validation_score : callable, optional
        ``params -> score`` (higher is better).  When given, it is tracked instead
        of the loss and the best parameters are restored at the end.
    rng : RandomState, optional
    state : OptimizerState, optional
        Carried over from a previous call (warm start, ``partial_fit``).
    verbose : int
    epoch_order : callable, optional
        ``rng -> rows``: the order of a shuffled epoch when the samples want
        one (samples in blocks on disk or on a cluster visit their blocks one
        after another); by default the previous epoch's order, reshuffled.
    monitor : callable, optional
        ``monitor(params) -> stop``, called after each epoch with the current
        parameters (scikit-learn's callbacks: :mod:`sktensorcnn._callbacks`); a
        true answer ends the run there, as converged.

    Returns
    -------
    EpochResult
    """
    rng = np.random.RandomState(0) if rng is None else rng
    params = [p.copy() for p in params]
    result = EpochResult(params, state=state or OptimizerState())
    best_params, best_score, stall = None, -np.inf, 0
    order = np.arange(n_samples)
    size = n_samples if method == "gd" else max(1, min(batch_size, n_samples))
    for epoch in range(1, max_iter + 1):
        start = time.perf_counter()
        if shuffle and method == "adam":
            if epoch_order is None:
                rng.shuffle(order)
            else:
                order = epoch_order(rng)
        total = 0.0
        for first in range(0, n_samples, size):
            rows = order[first:first + size]
            value, grads = objective(params, rows)
            total += value * len(rows)
            _step(method, params, grads, result.state, learning_rate, momentum,
                  betas, epsilon)
        loss = total / n_samples
        if not np.isfinite(loss) or (result.loss_curve and loss > DIVERGED
                                     * result.loss_curve[0]):
            raise FloatingPointError(
                f"{method} diverged: the training loss became {loss:.3g} in "
                f"epoch {epoch}" + (f", from {result.loss_curve[0]:.3g} in the "
                                    "first" if result.loss_curve else "")
                + f"; lower learning_rate_init (now {learning_rate:g})."
            )
        result.loss_curve.append(loss)
        result.n_iter = epoch
        message = f"Epoch {epoch}: loss {loss:.6e}"
        if validation_score is None:  # MLP's rule on the training loss
            improved = loss < result.best_loss - tol
        else:
            score = validation_score(params)
            result.validation_scores.append(score)
            message += f", validation score {score:.6f}"
            improved = score > best_score + tol
            if score > best_score:
                best_score, best_params = score, [p.copy() for p in params]
        result.best_loss = min(result.best_loss, loss)
        if verbose:
            print(f"{message}, {time.perf_counter() - start:.2f} s")
        stall = 0 if improved else stall + 1
        if stop_requested(monitor, params) or stall >= n_iter_no_change:
            result.converged = True
            break
    if best_params is not None:
        params[:] = best_params
    result.params = params
    result.objective = result.loss_curve[-1] if result.loss_curve else np.inf
    return result
