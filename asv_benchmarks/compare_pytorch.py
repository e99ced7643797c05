"""Training throughput against PyTorch (optional: ``pip install torch``).

One full-batch forward + backward of conv -> activation -> average pooling ->
linear with the squared loss, in samples per second, for sktensorcnn's numba
kernels and for PyTorch's CPU ``ConvNd`` + ``AvgPoolNd`` + ``Linear``, both on the
same number of threads.  Problems (nonlinear-network issue):

* S1: input (7, 5, 7), kernel (2, 2, 2), pool (3, 2, 3), K = 3, n = 10^4;
* volume: input 32^3, kernel 5^3, K = 16, pooled to 4^3; also with Tucker ranks
  (2, 2, 2, 2) and CP rank 2 through the factorized convolution, against
  PyTorch's dense network and against a PyTorch network doing the same
  factorized computation (as TensorLy-Torch's factorized convolutions do):
  Tucker, one 1-D convolution per mode (each channel filtered by the next
  mode's ``R_j`` filters, grouped) and a 1x1x1 convolution mixing the core
  with the output factor; CP, a 1-D convolution along the first mode into the
  ``R`` components, depthwise 1-D convolutions along the others, and a 1x1x1
  convolution by the output factor.

For the volume, one epoch of Adam with mini-batches of 16 is also timed
(seconds; the ratio is PyTorch's time over ours).  The dense rows also give
GFLOP/s (the convolution and its kernel gradient, :func:`conv_flops`) beside
the GFLOP/s of a 1024 x 1024 matrix product on the same threads, the machine's
practical peak.

Run ``python asv_benchmarks/compare_pytorch.py [--threads 2]``.  PyTorch is never a
dependency of sktensorcnn; this script is the only place it appears.
"""

import argparse
import time

import numba
import numpy as np

from sktensorcnn import ConvPoolGeometry
from sktensorcnn.network import factorized_network_loss, network_loss
from sktensorcnn.parametrizations import CPWeight, TuckerWeight

PROBLEMS = {
    "S1": dict(shape=(7, 5, 7), kernel=2, pool=(3, 2, 3), K=3, n=10_000),
    "volume32": dict(shape=(32, 32, 32), kernel=5, pool=7, K=16, n=32),
}


def best_of(fn, repeat=3):
    fn()
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def ours(X, y, A, B, geometry):
    w = np.full(len(y), 1.0 / len(y))
    return best_of(lambda: network_loss(X, y, w, A, B[None], [0.0], geometry, "relu"))


def ours_factorized(X, y, B, geometry, kind, ranks):
    """Tucker or CP stacked kernels, convolved factor by factor."""
    K = B.shape[0]
    modes = (*geometry.kernel_modes, K)
    weight = TuckerWeight(modes, ranks) if kind == "tucker" else CPWeight(modes, ranks)
    params = weight.initialize(np.random.RandomState(0))
    w = np.full(len(y), 1.0 / len(y))
    return best_of(lambda: factorized_network_loss(
        X, y, w, params, B[None], [0.0], geometry, "relu", "squared", kind))


def _time_step(model, X, y, dtype):
    """Best time of one full-batch forward + backward of a PyTorch model with
    the squared loss."""
    import torch

    model = model.to(getattr(torch, dtype))
    Xt = torch.from_numpy(X[:, None])
    yt = torch.from_numpy(y.astype(X.dtype))

    def step():
        model.zero_grad()
        loss = 0.5 * ((model(Xt)[:, 0] - yt) ** 2).mean()
        loss.backward()

    return best_of(step)


def pytorch(X, y, A, B, geometry, dtype):
    import torch

    conv = torch.nn.Conv3d(1, A.shape[0], geometry.kernel_size, bias=False)
    pool = torch.nn.AvgPool3d(geometry.pool_size)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(A[:, None]))
    fc = torch.nn.Linear(A.shape[0] * geometry.n_cells, 1)
    model = torch.nn.Sequential(conv, torch.nn.ReLU(), pool, torch.nn.Flatten(), fc)
    return _time_step(model, X, y, dtype)


def pytorch_factorized(X, y, B, geometry, kind, ranks, dtype):
    """The factorized network in PyTorch: 1-D convolutions along one mode at a
    time, then the output mixing, ReLU, pooling and the linear layer."""
    from torch import nn

    l1, l2, l3 = geometry.kernel_size
    K = B.shape[0]
    if kind == "tucker":
        R1, R2, R3, R_out = ranks
        layers = [nn.Conv3d(1, R1, (l1, 1, 1), bias=False),
                  nn.Conv3d(R1, R1 * R2, (1, l2, 1), groups=R1, bias=False),
                  nn.Conv3d(R1 * R2, R1 * R2 * R3, (1, 1, l3), groups=R1 * R2,
                            bias=False),
                  # core (R1 R2 R3 -> R_out) and output factor (R_out -> K)
                  nn.Conv3d(R1 * R2 * R3, R_out, 1, bias=False),
                  nn.Conv3d(R_out, K, 1, bias=False)]
    else:
        R = ranks
        layers = [nn.Conv3d(1, R, (l1, 1, 1), bias=False),
                  nn.Conv3d(R, R, (1, l2, 1), groups=R, bias=False),
                  nn.Conv3d(R, R, (1, 1, l3), groups=R, bias=False),
                  nn.Conv3d(R, K, 1, bias=False)]
    model = nn.Sequential(*layers, nn.ReLU(), nn.AvgPool3d(geometry.pool_size),
                          nn.Flatten(), nn.Linear(K * geometry.n_cells, 1))
    return _time_step(model, X, y, dtype)


def ours_adam_epoch(X, y, geometry, K):
    """Seconds of one Adam epoch (mini-batches of 16) of ``CNNRegressor`` with
    ReLU: the second ``partial_fit`` (the first one also makes the start)."""
    from sktensorcnn import CNNRegressor

    est = CNNRegressor(kernel_size=geometry.kernel_size, pool_size=geometry.pool_size,
                       n_kernels=K, activation="relu", solver="adam", batch_size=16,
                       init="random", random_state=0)
    est.partial_fit(X, y)
    return best_of(lambda: est.partial_fit(X, y), repeat=7)


def pytorch_adam_epoch(X, y, geometry, K, dtype):
    """Seconds of one Adam epoch (mini-batches of 16) of the same network in
    PyTorch."""
    import torch
    from torch import nn

    model = nn.Sequential(nn.Conv3d(1, K, geometry.kernel_size, bias=False),
                          nn.ReLU(), nn.AvgPool3d(geometry.pool_size), nn.Flatten(),
                          nn.Linear(K * geometry.n_cells, 1))
    model = model.to(getattr(torch, dtype))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    Xt = torch.from_numpy(X[:, None])
    yt = torch.from_numpy(y.astype(X.dtype))

    def epoch():
        for first in range(0, len(Xt), 16):
            optimizer.zero_grad()
            output = model(Xt[first:first + 16])[:, 0]
            loss = 0.5 * ((output - yt[first:first + 16]) ** 2).mean()
            loss.backward()
            optimizer.step()

    return best_of(epoch, repeat=7)


def gemm_peak(dtype, size=1024):
    """GFLOP/s of a square matrix product in numpy's BLAS (best of five), the
    yardstick of the dense paths."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(dtype) for _ in range(2))
    return 2 * size**3 / best_of(lambda: a @ b, repeat=5) / 1e9


def conv_flops(geometry, K):
    """Floating-point operations per sample of one forward + backward pass of
    the dense convolution: the convolution and the kernel gradient, each
    ``K C L M`` multiply-adds (no input gradient is needed)."""
    C = geometry.n_channels or 1
    macs = K * C * int(np.prod(geometry.kernel_size)) * int(np.prod(
        geometry.conv_shape))
    return 2 * 2 * macs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
        print("PyTorch is not installed: only sktensorcnn's figures are printed.")
    peaks = {dtype: gemm_peak(dtype) for dtype in ("float32", "float64")}
    print(f"{'problem':<10}{'dtype':<9}{'sktensorcnn/s':>15}{'PyTorch/s':>12}"
          f"{'ratio':>8}{'PyTorch factorized/s':>22}{'ratio':>8}")
    for name, p in PROBLEMS.items():
        geometry = ConvPoolGeometry.from_params(p["shape"], kernel_size=p["kernel"],
                                                pool_size=p["pool"])
        rng = np.random.default_rng(0)
        A = 0.1 * rng.standard_normal((p["K"], *geometry.kernel_shape))
        B = rng.standard_normal((p["K"], *geometry.pooled_shape))
        for dtype in ("float32", "float64"):
            X = rng.standard_normal((p["n"], *p["shape"])).astype(dtype)
            y = rng.standard_normal(p["n"])
            rate = p["n"] / ours(X, y, A, B, geometry)
            line = f"{name:<10}{dtype:<9}{rate:>15.0f}"
            if torch is not None:
                theirs = p["n"] / pytorch(X, y, A.astype(dtype), B, geometry, dtype)
                line += f"{theirs:>12.0f}{rate / theirs:>8.2f}"
            flops = conv_flops(geometry, p["K"]) / 1e9
            line += (f"   GFLOP/s: {rate * flops:.1f}"
                     + (f" vs {theirs * flops:.1f}" if torch is not None else "")
                     + f" (GEMM peak {peaks[dtype]:.0f})")
            print(line)
            if name != "volume32":
                continue
            for kind, ranks in (("tucker", (2, 2, 2, 2)), ("cp", 2)):
                rate = p["n"] / ours_factorized(X, y, B, geometry, kind, ranks)
                line = f"{'  ' + kind:<10}{dtype:<9}{rate:>15.0f}"
                if torch is not None:
                    same = p["n"] / pytorch_factorized(X, y, B, geometry, kind,
                                                       ranks, dtype)
                    line += (f"{theirs:>12.0f}{rate / theirs:>8.2f}"
                             f"{same:>22.0f}{rate / same:>8.2f}")
                print(line + f"   (rank(s) {ranks})")
            ours_epoch = ours_adam_epoch(X, y, geometry, p["K"])
            line = f"{'  Adam':<10}{dtype:<9}{ours_epoch:>14.3f}s"
            if torch is not None:
                theirs_epoch = pytorch_adam_epoch(X, y, geometry, p["K"], dtype)
                line += f"{theirs_epoch:>11.3f}s{theirs_epoch / ours_epoch:>8.2f}"
            print(line + "   (one epoch, batches of 16, seconds)")


if __name__ == "__main__":
    main()
