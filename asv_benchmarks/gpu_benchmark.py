"""GPU against CPU: kernel throughput and fit time (run on a machine with a GPU).

For each problem, the numba.cuda kernels against the CPU kernels (and PyTorch's
CUDA ``ConvNd`` + ``AvgPoolNd`` + ``Linear`` when torch with CUDA is installed):

* conv-pool features ``Z`` of the linear network (samples per second);
* one full-batch forward + backward of the network with the squared loss, the
  samples already on the device (samples per second), with dense kernels and
  with Tucker ranks 2 (factor-by-factor convolution);
* ``fit`` of a ReLU ``CNNRegressor`` (L-BFGS, fixed iterations), ``device='cpu'``
  against ``device='cuda'`` (seconds), and the largest difference of their
  predictions.

Problems: S1 of [Compressed CNNs] (tiny samples, many of them) and a 32^3 volume with 16
kernels.  Run ``python asv_benchmarks/gpu_benchmark.py [--quick]``; it needs
``pip install 'sktensorcnn[cuda]'`` and an NVIDIA driver.  Without a GPU it says
so and exits.
"""

import argparse
import time
import warnings

import numpy as np
from compare_pytorch import best_of  # same directory: the script's timing rule
from sklearn.exceptions import ConvergenceWarning

from sktensorcnn import CNNRegressor, ConvPoolGeometry, kernels
from sktensorcnn.network import _spread

PROBLEMS = {
    "S1": dict(shape=(7, 5, 7), kernel=2, pool=(3, 2, 3), K=3, n=20_000),
    "volume32": dict(shape=(32, 32, 32), kernel=5, pool=7, K=16, n=256),
}


def torch_step(X, geometry, K, pool):
    """PyTorch CUDA forward + backward time, or None without torch / CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    N = geometry.n_modes
    conv = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[N]
    avg = {1: torch.nn.AvgPool1d, 2: torch.nn.AvgPool2d, 3: torch.nn.AvgPool3d}[N]
    model = torch.nn.Sequential(
        conv(1, K, geometry.kernel_size, dtype=torch.float64), torch.nn.ReLU(),
        avg(pool), torch.nn.Flatten(),
        torch.nn.Linear(K * geometry.n_cells, 1, dtype=torch.float64)).cuda()
    Xt = torch.as_tensor(X[:, None], device="cuda")
    yt = torch.zeros(len(X), 1, dtype=torch.float64, device="cuda")

    def step():
        model.zero_grad()
        loss = 0.5 * ((model(Xt) - yt) ** 2).mean()
        loss.backward()
        torch.cuda.synchronize()

    return best_of(step)


def run_problem(name, p, n, rng):
    """Print the rows of one problem."""
    geometry = ConvPoolGeometry.from_params(p["shape"], kernel_size=p["kernel"],
                                            pool_size=p["pool"])
    X = rng.standard_normal((n, *p["shape"]))
    y = rng.standard_normal(n)
    w = np.full(n, 1.0 / n)
    K = p["K"]
    A = rng.standard_normal((K, *geometry.kernel_shape))
    Bt = _spread(rng.standard_normal((1, K, *geometry.pooled_shape)), geometry)
    b = np.zeros(1)

    def features_gpu():
        with kernels.on_device("cuda"):
            kernels.conv_pool_features(X, geometry)

    with kernels.on_device("cuda"):
        samples = kernels.stage_samples(X, geometry, y, w, normalize=False)
    rows = [
        ("features, samples/s",
         n / best_of(lambda: kernels.conv_pool_features(X, geometry)),
         n / best_of(features_gpu), None),
        ("fwd+bwd, samples/s",
         n / best_of(lambda: kernels.network_loss_grad(X, y, w, A, Bt, b, geometry,
                                                       1, 0)),
         n / best_of(lambda: samples.loss_grad(A, Bt, b, 1, 0)),
         None),
    ]
    # Tucker ranks (2, ..., 2): the factor-by-factor convolution on both devices
    ranks = [2] * (geometry.n_modes + 1)
    params = ([rng.standard_normal((m, 2)) for m in (*geometry.kernel_size, K)]
              + [rng.standard_normal(ranks)])
    rows.append((
        "Tucker fwd+bwd, samples/s",
        n / best_of(lambda: kernels.factorized_network_loss_grad(
            X, y, w, params, Bt, b, geometry, 1, 0)),
        n / best_of(lambda: samples.factorized_loss_grad(params, Bt, b, 1, 0,
                                                         "tucker")),
        None))
    torch_time = torch_step(X, geometry, K, p["pool"])
    if torch_time is not None:
        rows[1] = (*rows[1][:3], n / torch_time)
    fits = {}
    for device in ("cpu", "cuda"):
        est = CNNRegressor(K, kernel_size=p["kernel"], pool_size=p["pool"],
                           activation="relu", max_iter=20, tol=0, random_state=0,
                           device=device)
        start = time.perf_counter()
        est.fit(X, y)
        fits[device] = (time.perf_counter() - start, est.predict(X[:100]))
    gap = np.abs(fits["cpu"][1] - fits["cuda"][1]).max()
    rows.append(("fit 20 L-BFGS its, s", fits["cpu"][0], fits["cuda"][0], None))
    for what, cpu, gpu, torch_rate in rows:
        torch_text = "-" if torch_rate is None else f"{torch_rate:,.0f}"
        print(f"{name:<10}{what:<26}{cpu:>12,.3g}{gpu:>12,.3g}{torch_text:>12}")
    print(f"{name:<10}{'max |pred cpu - gpu|':<26}{gap:>12.2e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller problems, for a smoke test")
    args = parser.parse_args()
    if not kernels.cuda_available():
        print("No CUDA GPU: numba.cuda.is_available() is False. Nothing to run.")
        return
    warnings.simplefilter("ignore", ConvergenceWarning)
    rng = np.random.default_rng(0)
    print(f"{'problem':<10}{'what':<26}{'CPU':>12}{'GPU':>12}{'PyTorch':>12}")
    for name, p in PROBLEMS.items():
        run_problem(name, p, p["n"] // (100 if args.quick else 1), rng)


if __name__ == "__main__":
    main()
