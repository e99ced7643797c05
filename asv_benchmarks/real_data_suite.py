"""Real-data benchmark suite: our estimators against the tools users would pick.

One command runs it and prints (and, with ``--write-docs``, stores in
``docs/benchmarks.rst``) one table: test accuracy (classification) or RMSE
(regression), fit time and parameter count of

* our estimators with their defaults and only the geometry chosen (the default
  identity activation, and ``activation='relu'``); on sets with a channel axis
  (spectral bands, cepstral coefficients) after
  ``TensorStandardScaler(channel_axis=...)``, which standardizes each channel as
  ``StandardScaler`` standardizes each feature for the flat baselines;
* a small ``GridSearchCV`` over them (8 candidates, 3 folds);
* ``LogisticRegression`` / ``RidgeCV`` on the standardized, flattened inputs;
* scikit-learn's ``MLPClassifier`` / ``MLPRegressor`` (8 hidden units; L-BFGS on
  the small sets, Adam on Fashion-MNIST);
* where PyTorch is installed (``pip install "sktensorcnn[compare]"``), a PyTorch
  network of the same architecture trained with Adam.

The data sets load offline from packages (:mod:`real_data`): run
``python asv_benchmarks/real_data.py --fetch`` once to copy the UCR/UEA files out
of sktime's wheel, and install Debian's ``dataset-fashion-mnist`` for
Fashion-MNIST.  Sets whose files are missing are reported and skipped.

Usage::

    python asv_benchmarks/real_data_suite.py                 # every set
    python asv_benchmarks/real_data_suite.py digits arrowhead
    python asv_benchmarks/real_data_suite.py --write-docs    # update the docs table
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from real_data import DATASETS, patch_mean_spectra  # noqa: E402

from sktensorcnn import CNNClassifier, CNNRegressor  # noqa: E402
from sktensorcnn.preprocessing import TensorStandardScaler  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.rst"
RESULTS = Path(__file__).resolve().parent / "results" / "real_data.json"
BEGIN, END = ".. real-data-begin", ".. real-data-end"


@dataclass
class Setting:
    """The geometry chosen per set (the only thing a user must decide), and
    the grid's two kernel sizes."""

    kernel_size: object
    pool_size: object
    n_kernels: int = 8
    kernel_sizes: tuple = ()
    network: dict | None = None  # extra parameters of the ReLU fit (large sets)


SETTINGS = {
    "digits": Setting(3, 2, 8, (3, 5)),
    # 60k samples: Adam by mini-batches from a random start (the spectral start
    # is a linear fit on 60k x 36,000 features); no grid
    "fashion_mnist": Setting(5, 2, 32, (), dict(
        solver="adam", init="random", batch_size=64, learning_rate_init=1e-3,
        max_iter=20)),
    # 5,848 patches of 5,000 values: no grid (24 network fits take an hour)
    "indian_pines": Setting(3, 3, 8, ()),
    "covid_serology": Setting((3, 3), 2, 4, ((2, 2), (3, 3))),
    "japanese_vowels": Setting(5, 5, 8, (3, 7)),
    "arrowhead": Setting(9, 8, 4, (5, 15)),
    "italy_power_demand": Setting(3, 3, 4, (3, 5)),
    "osuleaf": Setting(9, 8, 8, (5, 15)),
    "acsf1": Setting(15, 16, 8, (9, 25)),
    "covid3month": Setting(7, 6, 4, (3, 11)),
}


@dataclass
class Row:
    dataset: str
    model: str
    score: float
    fit_seconds: float
    n_params: int


def _score(est, X, y, task) -> float:
    prediction = est.predict(X)
    if task == "classification":
        return float(np.mean(prediction == y))
    return float(np.sqrt(np.mean((prediction - y) ** 2)))


def _timed_fit(est, X, y):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return time.perf_counter() - start


def _flat(X):
    return X.reshape(len(X), -1)


def _sklearn_params(est) -> int:
    step = est.steps[-1][1] if hasattr(est, "steps") else est
    if hasattr(step, "coefs_"):
        return int(sum(w.size for w in step.coefs_) +
                   sum(b.size for b in step.intercepts_))
    return int(np.size(step.coef_) + np.size(step.intercept_))


def run_dataset(name: str, *, ours_only: bool = False,
                torch_only: bool = False) -> list[Row]:
    data = DATASETS[name]()
    if torch_only:
        row = _torch_row(name, data, SETTINGS[name])
        return [] if row is None else [row]
    setting = SETTINGS[name]
    task = data.task
    Xtr, ytr, Xte, yte = data.X_train, data.y_train, data.X_test, data.y_test
    ours = CNNClassifier if task == "classification" else CNNRegressor
    geometry = dict(kernel_size=setting.kernel_size, pool_size=setting.pool_size,
                    n_kernels=setting.n_kernels, channel_axis=data.channel_axis)
    rows = []

    def ours_model(**params):
        # channels in different units (bands, coefficients) are standardized
        # one by one, as the flat baselines standardize each feature
        est = ours(**geometry, random_state=0, **params)
        if data.channel_axis is None:
            return est
        return make_pipeline(TensorStandardScaler(channel_axis=data.channel_axis),
                             est)

    def fitted(est):
        return est.steps[-1][1] if hasattr(est, "steps") else est

    def record(model, est, X_train, X_test):
        seconds = _timed_fit(est, X_train, ytr)
        n_params = (fitted(est).n_params_ if hasattr(fitted(est), "n_params_")
                    else _sklearn_params(est))
        rows.append(Row(name, model, _score(est, X_test, yte, task), seconds,
                        int(n_params)))
        print(f"  {model:<34} {rows[-1].score:9.4f} {seconds:9.2f}s "
              f"{rows[-1].n_params:>9d}", flush=True)

    print(f"{name}: train {Xtr.shape}, test {Xte.shape}", flush=True)
    large = setting.network is not None
    if not large:
        record("CNN, defaults (identity)", ours_model(), Xtr, Xte)
    record("CNN, activation='relu', Adam" if large else
           "CNN, defaults, activation='relu'",
           ours_model(activation="relu", **(setting.network or {})), Xtr, Xte)
    if large:  # as PyTorch's row computes: in float32
        record("CNN, activation='relu', Adam, float32",
               ours_model(activation="relu", **setting.network),
               Xtr.astype(np.float32), Xte.astype(np.float32))
    if setting.kernel_sizes:
        prefix = "" if data.channel_axis is None else "cnn__"
        model = ours_model()
        if prefix:
            model.steps[-1] = ("cnn", model.steps[-1][1])
        grid = GridSearchCV(
            model,
            {prefix + "n_kernels": [max(2, setting.n_kernels // 2),
                                    setting.n_kernels],
             prefix + "activation": ["identity", "relu"],
             prefix + "kernel_size": list(setting.kernel_sizes)},
            cv=3)
        seconds = _timed_fit(grid, Xtr, ytr)
        best = grid.best_estimator_
        rows.append(Row(name, "CNN, GridSearchCV (8 candidates)",
                        _score(best, Xte, yte, task), seconds,
                        fitted(best).n_params_))
        print(f"  {'CNN, GridSearchCV (8 candidates)':<34} {rows[-1].score:9.4f} "
              f"{seconds:9.2f}s {rows[-1].n_params:>9d}  {grid.best_params_}",
              flush=True)
    if ours_only:
        return rows
    if task == "classification":
        linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        mlp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2000, random_state=0,
                            solver="adam" if large else "lbfgs")
    else:
        linear = make_pipeline(StandardScaler(),
                               RidgeCV(alphas=np.logspace(-3, 3, 13)))
        mlp = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2000, random_state=0,
                           solver="lbfgs")
    record("LogisticRegression" if task == "classification" else "RidgeCV",
           linear, _flat(Xtr), _flat(Xte))
    if name == "indian_pines":
        spectra = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        record("LogisticRegression, patch-mean spectrum", spectra,
               patch_mean_spectra(Xtr), patch_mean_spectra(Xte))
    mlp = make_pipeline(StandardScaler(), mlp)
    record("MLP (8 hidden units)", mlp, _flat(Xtr), _flat(Xte))
    torch_row = _torch_row(name, data, setting)
    if torch_row is not None:
        rows.append(torch_row)
    return rows


def _torch_row(name, data, setting, *, min_epochs=20, min_steps=2000):
    """The same conv -> ReLU -> average pool -> FC network in PyTorch, Adam,
    mini-batches of 64, ``min_epochs`` epochs and at least ``min_steps`` steps
    (tiny sets need many epochs); ``None`` without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    from torch import nn

    torch.manual_seed(0)
    Xtr, Xte = data.X_train, data.X_test
    if data.channel_axis == -1:
        Xtr, Xte = np.moveaxis(Xtr, -1, 1), np.moveaxis(Xte, -1, 1)
    elif data.channel_axis is None:
        Xtr, Xte = Xtr[:, None], Xte[:, None]
    if data.channel_axis is None:
        shift, scale = 0.0, float(np.sqrt(np.mean(Xtr**2)))
    else:  # per channel, as our estimators get it
        scaler = TensorStandardScaler(channel_axis=1).fit(Xtr)
        shift, scale = scaler.mean_, scaler.scale_
    Xtr = torch.tensor((Xtr - shift) / scale, dtype=torch.float32)
    Xte = torch.tensor((Xte - shift) / scale, dtype=torch.float32)
    n_modes = Xtr.ndim - 2
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[n_modes]
    pool = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[n_modes]
    classification = data.task == "classification"
    classes = np.unique(data.y_train)
    n_out = len(classes) if classification else 1
    body = nn.Sequential(conv(Xtr.shape[1], setting.n_kernels, setting.kernel_size,
                              bias=False), nn.ReLU(), pool(setting.pool_size),
                         nn.Flatten())
    with torch.no_grad():
        width = body(Xtr[:1]).shape[1]
    model = nn.Sequential(body, nn.Linear(width, n_out))
    if classification:
        target = torch.tensor(np.searchsorted(classes, data.y_train))
        loss_fn = nn.CrossEntropyLoss()
    else:
        mean, std = data.y_train.mean(), data.y_train.std()
        target = torch.tensor((data.y_train - mean) / std, dtype=torch.float32)
        loss_fn = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    epochs = max(min_epochs, -(-min_steps // -(-len(Xtr) // 64)))
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(Xtr))
        for first in range(0, len(Xtr), 64):
            rows = order[first:first + 64]
            optimizer.zero_grad()
            output = model(Xtr[rows])
            loss = loss_fn(output if classification else output[:, 0],
                           target[rows])
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        output = model(Xte).numpy()
    if classification:
        score = float(np.mean(classes[output.argmax(axis=1)] == data.y_test))
    else:
        score = float(np.sqrt(np.mean((output[:, 0] * std + mean - data.y_test)
                                      ** 2)))
    n_params = sum(p.numel() for p in model.parameters())
    row = Row(name, "PyTorch, same network, Adam", score, seconds, n_params)
    print(f"  {row.model:<34} {score:9.4f} {seconds:9.2f}s {n_params:>9d}")
    return row


def rst_table(rows: list[Row]) -> str:
    header = ("data set", "model", "test acc. / RMSE", "fit (s)", "parameters")
    body = [(r.dataset, r.model, f"{r.score:.4f}", f"{r.fit_seconds:.2f}",
             str(r.n_params)) for r in rows]
    widths = [max(len(h), *(len(b[j]) for b in body)) for j, h in enumerate(header)]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
             rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(b, widths)).rstrip()
              for b in body]
    return "\n".join([*lines, rule])


def store(rows: list[Row]) -> list[Row]:
    """Merge ``rows`` into the stored results, row by row (a run may cover some
    sets or models only), and return all stored rows in the suite's order."""
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    stamp = time.strftime("%Y-%m-%d")
    for row in rows:
        models = stored.setdefault(row.dataset, {})
        models[row.model] = {**asdict(row), "date": stamp}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(stored, indent=1) + "\n")
    order = [name for name in SETTINGS if name in stored]
    return [Row(**{k: v for k, v in row.items() if k != "date"})
            for name in order for row in stored[name].values()]


def write_docs(table: str, begin: str = BEGIN, end: str = END) -> None:
    """Put ``table`` between the markers ``begin`` and ``end`` of
    ``docs/benchmarks.rst`` (appended with them where they are missing)."""
    text = DOCS.read_text()
    block = (f"{begin}\n\n{table}\n\n{end}")
    if begin in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOCS.write_text(text)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", default=list(SETTINGS))
    parser.add_argument("--ours-only", action="store_true",
                        help="fit only our estimators (the stored baselines stay)")
    parser.add_argument("--torch-only", action="store_true",
                        help="fit only the PyTorch network")
    parser.add_argument("--write-docs", action="store_true",
                        help="store the table in docs/benchmarks.rst")
    args = parser.parse_args(argv)
    rows = []
    for name in args.datasets:
        try:
            rows += run_dataset(name, ours_only=args.ours_only,
                                torch_only=args.torch_only)
        except (FileNotFoundError, OSError) as error:
            print(f"{name}: skipped ({error})", flush=True)
    print(rst_table(rows))
    if args.write_docs:
        write_docs(rst_table(store(rows)))


if __name__ == "__main__":
    main()
