"""
Generalization bounds by compression
====================================

A network that can be replaced, on its training sample, by one described with
few parameters generalizes like that small one.  :mod:`sktensorcnn.bounds`
turns a fitted classifier into three such bounds:

* the noise-stability bound of [Compression bounds] (random projections, sized
  by the layer cushions, the activation contraction and the Jacobian);
* the CP / Tucker bound of [Tensor generalization] (the kernel's smallest
  components pruned, as many as the margin allows);
* the quantized-parameter bound (Theorem 2.1 of [Compression bounds] applied
  to the parameters rounded onto a grid), the only one computed with every
  constant, so the only one that holds as printed.

The first two are the papers' estimates (logarithms and constants dropped).
Here they are compared on scikit-learn's digits for dense, Tucker and CP
networks, with true against shuffled labels, and over the epochs of a fit.
Every bound is checked against the held-out error of the network it is about.

Which are non-vacuous (below 1), in the runs below:

* the quantized bound, the only rigorous one, for the linear Tucker network
  (``q = d_M`` = 424 parameters of 4 bits on 1200 samples) and, just, for the
  dense ReLU network; not for the others, nor on 300 samples;
* the tensor estimate for every network trained on 1200 digits, not on 300;
* the noise-stability estimate nowhere: for a two-layer network its effective
  parameter count is several times the actual count (Table 1 of [Compression
  bounds] finds the same in the lower layers of VGG-19, where it is above
  100 %).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from sktensorcnn import CNNClassifier, CPCNNClassifier, TuckerCNNClassifier
from sktensorcnn.bounds import (
    compression_bound,
    effective_params,
    noise_stability,
    norm_bounds,
    quantized_bound,
    tensor_compression_bound,
)

X, y = load_digits(return_X_y=True)
X = X.reshape(-1, 8, 8) / 16
X_train, y_train, X_test, y_test = X[:1200], y[:1200], X[1200:], y[1200:]
GEOMETRY = dict(kernel_size=3, pool_size=2, random_state=0)
BITS = (4, 6, 8)  # the quantized bound takes the best, paying log(3)


def best_quantized(model, X, y):
    reports = [quantized_bound(model, X, y, n_bits=b, n_configs=len(BITS))
               for b in BITS]
    return min(reports, key=lambda r: r.bound)


def bounds_of(model, X, y, X_test, y_test):
    """Every bound, and the held-out error of the network each is about."""
    arora = compression_bound(model, X, y, random_state=0)
    tensor = tensor_compression_bound(model, X, y)
    quantized = best_quantized(model, X, y)
    test_error = 1 - model.score(X_test, y_test)
    # the noise-stability bound is about the compressed network g, which is
    # not built: the fitted network's error stands in for it
    rows = {
        "noise stability": (arora.bound, test_error),
        "tensor (pruned)": (tensor.bound, 1 - tensor.estimator.score(X_test, y_test)),
        "quantized": (quantized.bound, 1 - quantized.estimator.score(X_test, y_test)),
    }
    for name, (bound, error) in rows.items():  # every bound holds here
        assert bound >= error, (name, bound, error)
    return rows, arora, tensor, quantized


# %%
# Dense, Tucker and CP networks
# -----------------------------
# Each is trained on 1200 digits and measured on the other 597.  The effective
# number of parameters (Table 1 of [Compression bounds]) is far above the
# actual count: a two-layer network this small is not noise-stable enough for
# random projections to compress it.  Pruning CP / SVD components and rounding
# the parameters do compress it.
models = {
    "dense relu": CNNClassifier(n_kernels=6, activation="relu", **GEOMETRY),
    "Tucker relu": TuckerCNNClassifier(ranks=(3, 3, 4), n_kernels=8,
                                       activation="relu", **GEOMETRY),
    "CP relu": CPCNNClassifier(rank=4, n_kernels=8, activation="relu", **GEOMETRY),
    "Tucker linear": TuckerCNNClassifier(ranks=(3, 3, 4), n_kernels=8,
                                         max_iter=1000, **GEOMETRY),
}
print(f"{'model':14s} {'params':>6s} {'eff':>8s} {'test err':>8s} "
      f"{'stability':>9s} {'tensor':>7s} {'quantized':>9s}")
for name, model in models.items():
    model.fit(X_train, y_train)
    rows, arora, tensor, quantized = bounds_of(model, X_train, y_train,
                                               X_test, y_test)
    eff = sum(r["eff"] for r in effective_params(model, X_train))
    print(f"{name:14s} {model.n_params_:6d} {eff:8.0f} "
          f"{1 - model.score(X_test, y_test):8.3f} {arora.bound:9.2f} "
          f"{tensor.bound:7.2f} {quantized.bound:9.2f}"
          f"  (kept {tensor.terms['n_components']}/"
          f"{tensor.terms['n_components_fitted']} components, "
          f"{quantized.terms['n_bits']} bits, q={quantized.terms['q']})")

# %%
# Against norm-based bounds
# -------------------------
# The bounds [Compression bounds] compares with are products of layer norms;
# each gives a sample-complexity numerator, ``sqrt(numerator / m)`` being its
# generalization-gap term (margin ``gamma`` as the noise-stability bound chose
# it, constants dropped as in the paper's Figure 2; each layer's norms are
# those of the linear map it is, the convolution included).  As in the paper,
# the spectral bounds are an order of magnitude above the noise-stability
# estimate ("compression").  Unlike the paper's 19 layers of VGG-19, the plain
# products of Frobenius or ``l_{1,inf}`` norms are below it here: a product of
# norms grows with depth, and this model has two layers.
dense = models["dense relu"]
gamma = compression_bound(dense, X_train, y_train, random_state=0).gamma
numerators = norm_bounds(dense, X_train, gamma=gamma)
for name, value in numerators.items():
    print(f"{name:13s} numerator {value:10.3g}   gap term "
          f"{np.sqrt(value / len(X_train)):8.3g}")

# %%
# True against shuffled labels
# ----------------------------
# On 300 digits a ReLU network without pooling fits its labels whether they
# are true or shuffled (training accuracy 1 in both cases); a bound must tell
# the two apart (Figure 2 of [Compression bounds]).  As in the paper, the
# layer cushion is larger and the activation contraction smaller on true
# labels, and the noise-stability bound separates the two by a factor of
# about 5.  The quantized bound separates them too, less: the rounded network
# keeps fitting true labels but not shuffled ones.  The tensor bound does not
# move: the pruning compresses only the kernels, and the parameter count it
# pays is the FC layer's, the same for both.  On 300 samples every one of
# them is vacuous (above 1): they separate the two cases by their values, not
# by saying anything about either.
X_small, y_small = X_train[:300], y_train[:300]
shuffled = np.random.default_rng(0).permutation(y_small)
print(f"{'labels':9s} {'train acc':>9s} {'cushion':>8s} {'contract':>8s} "
      f"{'stability':>9s} {'tensor':>7s} {'quantized':>9s}")
separation = {}
for name, labels in (("true", y_small), ("shuffled", shuffled)):
    model = CNNClassifier(n_kernels=6, kernel_size=3, pool_size=1,
                          activation="relu", max_iter=2000,
                          random_state=0).fit(X_small, labels)
    stability = noise_stability(model, X_small, random_state=0)
    rows, arora, tensor, quantized = bounds_of(model, X_small, labels,
                                               X_test, y_test)
    separation[name] = (arora.bound, tensor.bound, quantized.bound)
    print(f"{name:9s} {model.score(X_small, labels):9.3f} "
          f"{np.median(stability.layer_cushion[:, 1]):8.3f} "
          f"{np.median(stability.activation_contraction):8.3f} "
          f"{arora.bound:9.2f} {tensor.bound:7.2f} {quantized.bound:9.2f}")
true, wrong = separation["true"], separation["shuffled"]
assert true[0] < wrong[0] and true[2] < wrong[2] and true[1] <= wrong[1]

# %%
# Over the epochs of a fit
# ------------------------
# A Tucker ReLU network trained by Adam, one ``partial_fit`` epoch at a time.
# Its training error is near zero after a few epochs while its test error
# still falls; the tensor bound falls with it, slowly (as in Figure 2b of
# [Tensor generalization]), while the noise-stability estimate rises a little.
model = TuckerCNNClassifier(ranks=(3, 3, 4), n_kernels=8, activation="relu",
                            solver="adam", batch_size=64, **GEOMETRY)
classes = np.unique(y_train)
epochs, curves = [], {"train error": [], "test error": [], "noise stability": [],
                      "tensor (pruned)": [], "quantized": []}
for epoch in range(1, 25):
    model.partial_fit(X_train, y_train, classes=classes)
    if epoch % 4:
        continue
    rows, *_ = bounds_of(model, X_train, y_train, X_test, y_test)
    epochs.append(epoch)
    curves["train error"].append(1 - model.score(X_train, y_train))
    curves["test error"].append(1 - model.score(X_test, y_test))
    for name, (bound, _) in rows.items():
        curves[name].append(bound)

fig, ax = plt.subplots(figsize=(6, 4))
for name, values in curves.items():
    ax.plot(epochs, values, marker="o", label=name)
ax.axhline(1.0, color="grey", lw=0.8, ls="--")
ax.set_xlabel("epoch")
ax.set_ylabel("error / bound")
ax.set_yscale("log")
ax.legend()
ax.set_title("Tucker ReLU network on digits")
plt.show()

for epoch, *values in zip(epochs, *curves.values()):
    print(f"epoch {epoch:2d}: " + ", ".join(f"{name} {value:.3f}" for name, value
                                           in zip(curves, values)))
for name in ("noise stability", "tensor (pruned)", "quantized"):
    below = [e for e, b in zip(epochs, curves[name]) if b < 1]
    print(f"{name:16s} non-vacuous (< 1) at epochs {below or 'none'}")
