"""Offline loaders for public real data sets that ship inside packages.

Every loader returns a :class:`RealDataset`: ``X_train``, ``y_train``, ``X_test``,
``y_test`` (float64 ``X`` unless a loader documents a ``dtype`` option; int labels
for classification, float targets for regression), the ``task``, the
``channel_axis`` that sktensorcnn's estimators should be given, a short
``description``, the ``citation`` of the data set's origin, and an ``info`` dict
of loader-specific facts (class names, split design, padding rule).

Where the data come from (nothing is downloaded at run time):

* ``digits``: scikit-learn's bundled copy of the UCI optical digits (8 x 8).
* ``fashion_mnist``: Debian's package ``dataset-fashion-mnist``
  (``apt-get install dataset-fashion-mnist``), gzipped IDX files.
* ``indian_pines`` and ``covid_serology``: the ``.npy`` files that tensorly ships
  in ``tensorly/datasets/data``.
* ``japanese_vowels``, ``arrowhead``, ``italy_power_demand``, ``osuleaf``,
  ``acsf1``, ``covid3month``: the UCR/UEA ``.ts`` files inside sktime's wheel.
  sktime is never installed or imported: :func:`fetch_sktime_ts_files` downloads
  the wheel with pip (the package registry) once and keeps only those ``.ts``
  files, in :func:`ts_data_home`.  Prepare them with::

      python asv_benchmarks/real_data.py --fetch-ts

Run ``python asv_benchmarks/real_data.py [NAME ...]`` for a summary of each set.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.model_selection import train_test_split

__all__ = [
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "INDIAN_PINES_CLASSES",
    "SKTIME_VERSION",
    "TS_DATASETS",
    "RealDataset",
    "fetch_sktime_ts_files",
    "indian_pines_split_map",
    "load_covid_serology",
    "load_digits_split",
    "load_fashion_mnist",
    "load_indian_pines_patches",
    "load_indian_pines_spectra",
    "load_ts_dataset",
    "patch_mean_spectra",
    "read_idx",
    "read_ts",
    "ts_data_home",
]


@dataclass(frozen=True)
class RealDataset:
    """A fixed train/test split of one real data set.

    Attribute access (``ds.X_train``) and key access (``ds["X_train"]``) both
    work, so benchmark code can treat it as a record or as a mapping.

    Attributes
    ----------
    name : str
        Registry name of the data set (a key of :data:`DATASETS`).
    X_train, X_test : ndarray
        Samples, ``(n, d_1, ..., d_N)`` with the channel axis where
        ``channel_axis`` says.
    y_train, y_test : ndarray
        Integer class labels (classification) or float targets (regression).
    task : {'classification', 'regression'}
        Kind of problem.
    channel_axis : {None, 1, -1}
        Layout of ``X``: no channel axis, ``(n, C, d...)`` or ``(n, d..., C)``.
    description : str
        What the samples and the targets are.
    citation : str
        Origin of the data set (title, authors, venue, year).
    info : dict
        Loader-specific facts: class names, split design, value scaling.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    channel_axis: int | None
    description: str
    citation: str
    info: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def keys(self) -> tuple[str, ...]:
        """Field names, so that ``dict(ds)``-style code works."""
        return ("name", "X_train", "y_train", "X_test", "y_test", "task",
                "channel_axis", "description", "citation", "info")

    @property
    def classes(self) -> np.ndarray | None:
        """Sorted labels seen in train or test; ``None`` for regression."""
        if self.task != "classification":
            return None
        return np.union1d(self.y_train, self.y_test)

    def summary(self) -> dict[str, Any]:
        """Shapes, value ranges and class counts, for reports and sanity checks."""
        out: dict[str, Any] = {
            "name": self.name,
            "task": self.task,
            "channel_axis": self.channel_axis,
            "X_train": self.X_train.shape,
            "X_test": self.X_test.shape,
            "dtype": str(self.X_train.dtype),
            "X_range": (float(np.nanmin(self.X_train)), float(np.nanmax(self.X_train))),
            "n_nan": int(np.isnan(self.X_train).sum() + np.isnan(self.X_test).sum()),
        }
        if self.task == "classification":
            classes = self.classes
            out["n_classes"] = len(classes)
            out["train_counts"] = dict(zip(
                classes.tolist(), _counts(self.y_train, classes).tolist()))
            out["test_counts"] = dict(zip(
                classes.tolist(), _counts(self.y_test, classes).tolist()))
        else:
            out["y_range"] = (float(self.y_train.min()), float(self.y_train.max()))
            out["y_mean_std"] = (float(self.y_train.mean()), float(self.y_train.std()))
        return out


def _counts(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return (np.asarray(y)[:, None] == classes[None, :]).sum(axis=0)


def _stratified_split(
    X: np.ndarray, y: np.ndarray, test_size: float, random_state: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # Stratified so that small classes keep their share on both sides; a fixed
    # seed so that every benchmark run sees the same samples.
    return train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=random_state)


# --------------------------------------------------------------------------- digits


def load_digits_split(test_size: float = 1 / 3, random_state: int = 0) -> RealDataset:
    """scikit-learn's digits as 8 x 8 images with a fixed stratified split.

    Parameters
    ----------
    test_size : float, default=1/3
        Fraction of the 1797 images held out.
    random_state : int, default=0
        Seed of the stratified split.

    Returns
    -------
    RealDataset
        ``X`` of shape ``(n, 8, 8)``, raw pixel counts 0..16 as float64,
        ``channel_axis=None``; labels 0..9.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = bunch.images.astype(np.float64)
    y = bunch.target.astype(np.int64)
    X_tr, X_te, y_tr, y_te = _stratified_split(X, y, test_size, random_state)
    return RealDataset(
        name="digits", X_train=X_tr, y_train=y_tr, X_test=X_te, y_test=y_te,
        task="classification", channel_axis=None,
        description=("Handwritten digits 0-9, 8 x 8 images of pixel counts 0..16 "
                     "(each pixel counts 'on' bits in a 4 x 4 cell of a 32 x 32 "
                     "bitmap); stratified split, "
                     f"test_size={test_size:.3g}, random_state={random_state}."),
        citation=("E. Alpaydin and C. Kaynak, 'Optical Recognition of Handwritten "
                  "Digits', UCI Machine Learning Repository, 1998; C. Kaynak, "
                  "'Methods of Combining Multiple Classifiers and Their "
                  "Applications to Handwritten Digit Recognition', MSc thesis, "
                  "Bogazici University, 1995."),
        info={"value_scale": "raw counts 0..16"},
    )


# --------------------------------------------------------------------- Fashion-MNIST

#: Where Debian's ``dataset-fashion-mnist`` package puts the IDX files.
FASHION_MNIST_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

# IDX type codes (third byte of the magic number) and the numpy dtype they store;
# multi-byte types are big-endian in the format.
_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8),
               0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not.

    The header is two zero bytes, a type code, the number of dimensions, then one
    big-endian uint32 per dimension; the values follow in C order.

    Parameters
    ----------
    path : str or path-like
        ``.gz`` files are decompressed on the fly.

    Returns
    -------
    ndarray
        The stored array, in its stored dtype.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape}, found {data.size} values")
    return data.reshape(shape)


def load_fashion_mnist(
    path: str | os.PathLike | None = None, scale: bool = True
) -> RealDataset:
    """Fashion-MNIST with its official 60,000 / 10,000 split.

    Parameters
    ----------
    path : str or path-like, optional
        Folder holding ``train-images-idx3-ubyte.gz`` and the three other files.
        Default: the environment variable ``SKTENSORCNN_FASHION_MNIST``, else
        :data:`FASHION_MNIST_DEBIAN_DIR` (Debian's ``dataset-fashion-mnist``).
    scale : bool, default=True
        Divide the 0..255 grey levels by 255, giving values in [0, 1].

    Returns
    -------
    RealDataset
        ``X`` of shape ``(n, 28, 28)`` float64, ``channel_axis=None``; labels
        0..9 (see :data:`FASHION_MNIST_CLASSES`).  About 450 MB in memory.

    Raises
    ------
    FileNotFoundError
        When the files are absent, naming the Debian package to install.
    """
    folder = Path(path or os.environ.get("SKTENSORCNN_FASHION_MNIST")
                  or FASHION_MNIST_DEBIAN_DIR)
    files = {part: folder / f"{prefix}-{kind}-idx{nd}-ubyte.gz"
             for part, prefix, kind, nd in [
                 ("X_train", "train", "images", 3), ("y_train", "train", "labels", 1),
                 ("X_test", "t10k", "images", 3), ("y_test", "t10k", "labels", 1)]}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        raise FileNotFoundError(
            "Fashion-MNIST files not found: " + ", ".join(missing) + ". Install "
            "Debian's package: 'apt-get update && apt-get install -y "
            "dataset-fashion-mnist' (files go to " + FASHION_MNIST_DEBIAN_DIR
            + "), or set SKTENSORCNN_FASHION_MNIST to a folder holding the four "
            "IDX .gz files.")
    arrays = {part: read_idx(f) for part, f in files.items()}
    factor = 1.0 / 255.0 if scale else 1.0
    return RealDataset(
        name="fashion_mnist",
        X_train=arrays["X_train"].astype(np.float64) * factor,
        y_train=arrays["y_train"].astype(np.int64),
        X_test=arrays["X_test"].astype(np.float64) * factor,
        y_test=arrays["y_test"].astype(np.int64),
        task="classification", channel_axis=None,
        description=("Zalando article images, 28 x 28 grey levels "
                     + ("scaled to [0, 1]" if scale else "0..255")
                     + ", 10 balanced classes; official 60k/10k split."),
        citation=("H. Xiao, K. Rasul and R. Vollgraf, 'Fashion-MNIST: a Novel "
                  "Image Dataset for Benchmarking Machine Learning Algorithms', "
                  "arXiv:1708.07747, 2017."),
        info={"class_names": FASHION_MNIST_CLASSES,
              "value_scale": "[0, 1]" if scale else "0..255", "source": str(folder)},
    )


# ---------------------------------------------------------------------- Indian Pines

INDIAN_PINES_CLASSES = (
    "Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture",
    "Grass-trees", "Grass-pasture-mowed", "Hay-windrowed", "Oats",
    "Soybean-notill", "Soybean-mintill", "Soybean-clean", "Wheat", "Woods",
    "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers")

# Blocked split of the 145 x 145 scene: an 8 x 8 grid of ~18 x 18 pixel blocks, of
# which 22 (about a third) drawn with RandomState(88) form the test side.  The seed
# was picked once, among 0..299 and grids of 6..10 blocks, for class coverage only
# (no model was fitted): every class has >= 16 training pixels for patches 3, 5 and
# 7, 13 of 16 classes reach the test side, and ~70 % of the kept pixels train.
# Alfalfa, Grass-pasture-mowed and Oats are single small fields, so a block split
# cannot put them on both sides without cutting a field along a block edge; this
# choice leaves them on the training side, where they cost nothing at test time.
_IP_GRID = 8
_IP_N_TEST_BLOCKS = 22
_IP_SEED = 88


def indian_pines_split_map() -> np.ndarray:
    """Side of every pixel in the blocked Indian Pines split.

    Returns
    -------
    ndarray of bool, shape (145, 145)
        ``True`` for pixels of test blocks, ``False`` for training blocks.
    """
    n_rows = n_cols = 145
    edges = np.linspace(0, n_rows, _IP_GRID + 1).round().astype(int)
    row_block = np.searchsorted(edges, np.arange(n_rows), side="right") - 1
    col_block = np.searchsorted(edges, np.arange(n_cols), side="right") - 1
    test_blocks = np.zeros(_IP_GRID * _IP_GRID, dtype=bool)
    order = np.random.RandomState(_IP_SEED).permutation(_IP_GRID * _IP_GRID)
    test_blocks[order[:_IP_N_TEST_BLOCKS]] = True
    return test_blocks[row_block[:, None] * _IP_GRID + col_block[None, :]]


def _window_is_pure(side: np.ndarray, half: int) -> np.ndarray:
    """True where the (2 half + 1)^2 window around a pixel lies on one side.

    Outside the image the side map is extended by its edge value: a window
    that sticks out of the scene is judged by the pixels it does cover.
    """
    padded = np.pad(side.astype(np.int8), half, mode="edge")
    windows = sliding_window_view(padded, (2 * half + 1, 2 * half + 1))
    return windows.min(axis=(2, 3)) == windows.max(axis=(2, 3))


def _indian_pines_raw() -> tuple[np.ndarray, np.ndarray, list[float]]:
    import tensorly.datasets

    bunch = tensorly.datasets.load_indian_pines()
    cube = np.asarray(bunch.tensor, dtype=np.float64)
    # tensorly returns the ground truth as ticks[0] (not as a 'labels' key) and
    # the band centres (nm) as ticks[1].
    labels = np.asarray(bunch.ticks[0]).astype(np.int64)
    return cube, labels, list(bunch.ticks[1])


def load_indian_pines_patches(patch: int = 5, dtype: Any = np.float64) -> RealDataset:
    """Indian Pines hyperspectral patches with a spatially blocked split.

    One sample per labelled pixel (label 0, unlabelled, is left out): the
    ``patch x patch x 200`` window centred on it, channels (bands) last.  The
    image is cut into an 8 x 8 grid of blocks; 22 blocks are the test side (see
    :func:`indian_pines_split_map`).  A pixel is kept only if its whole window
    lies on its own side, i.e. pixels closer than ``patch // 2`` to a border
    between a training and a test block are dropped on both sides.  Training and
    test windows are therefore disjoint: no test pixel lies inside any training
    patch and vice versa, so spatial autocorrelation cannot leak across the split.
    At the image border windows are completed by mirror reflection.

    Parameters
    ----------
    patch : int, default=5
        Odd window side.  With 5 (default) there are 8,427 samples (5,848
        train, 2,579 test; 69 % train) of 5,000 values, 337 MB in float64.  3
        gives 9,356 samples (6,313 / 3,043, 134 MB), 7 gives 7,495 (5,350 /
        2,145, 587 MB), 1 plain spectra of all 10,249 labelled pixels (6,764 /
        3,485, no buffer).  Larger windows drop more pixels near block borders.
    dtype : numpy dtype, default=float64
        Dtype of ``X``; float32 halves the memory (sktensorcnn converts to
        float64 at fit time, so it only helps storage).

    Returns
    -------
    RealDataset
        ``X`` of shape ``(n, patch, patch, 200)``, ``channel_axis=-1``, raw
        values (AVIRIS at-sensor radiance counts, 955..9604 over the scene, not
        standardized); labels 1..16 as in the ground truth (names in
        ``info['class_names']``, index ``label - 1``).
    """
    if patch < 1 or patch % 2 == 0:
        raise ValueError(f"patch must be a positive odd integer, got {patch}")
    half = patch // 2
    cube, labels, wavelengths = _indian_pines_raw()
    side = indian_pines_split_map()
    keep = (labels > 0) & _window_is_pure(side, half)
    padded = np.pad(cube.astype(dtype, copy=False), ((half, half), (half, half),
                                                     (0, 0)), mode="reflect")
    parts = {}
    for name, on_test in (("train", False), ("test", True)):
        rows, cols = np.nonzero(keep & (side == on_test))
        # Filled offset by offset rather than by fancy-indexing a sliding-window
        # view: that would build an (n, bands, p, p) copy and transpose it,
        # doubling the peak memory.
        X = np.empty((len(rows), patch, patch, cube.shape[2]), dtype=dtype)
        for i in range(patch):
            for j in range(patch):
                X[:, i, j, :] = padded[rows + i, cols + j, :]
        parts[name] = (X, labels[rows, cols], np.column_stack([rows, cols]))
    present_test = np.unique(parts["test"][1])
    return RealDataset(
        name="indian_pines",
        X_train=parts["train"][0], y_train=parts["train"][1],
        X_test=parts["test"][0], y_test=parts["test"][1],
        task="classification", channel_axis=-1,
        description=(f"AVIRIS scene (145 x 145 pixels, 200 bands), {patch} x {patch}"
                     " x 200 patches around labelled pixels, 16 land-cover classes;"
                     " spatially blocked split (8 x 8 grid, 22 test blocks, "
                     f"{half}-pixel buffer), raw radiance values."),
        citation=("M. F. Baumgardner, L. L. Biehl and D. A. Landgrebe, '220 Band "
                  "AVIRIS Hyperspectral Image Data Set: June 12, 1992 Indian Pine "
                  "Test Site 3', Purdue University Research Repository, 2015, "
                  "doi:10.4231/R7RX991C."),
        info={"class_names": INDIAN_PINES_CLASSES,
              "wavelengths_nm": wavelengths,
              "classes_missing_from_test": [
                  int(c) for c in range(1, 17) if c not in present_test],
              # (row, col) of each sample's centre pixel, for maps and checks
              "train_pixels": parts["train"][2], "test_pixels": parts["test"][2],
              "split": {"grid": _IP_GRID, "n_test_blocks": _IP_N_TEST_BLOCKS,
                        "seed": _IP_SEED, "buffer": half},
              "value_scale": "raw radiance counts (955..9604 over the scene)"},
    )


def patch_mean_spectra(X: np.ndarray) -> np.ndarray:
    """Mean spectrum of each channels-last patch.

    Parameters
    ----------
    X : ndarray of shape (n, d_1, ..., d_N, bands)
        Patches, e.g. from :func:`load_indian_pines_patches`.

    Returns
    -------
    ndarray of shape (n, bands)
        Average over the spatial axes: the features of the spectral baseline.
    """
    X = np.asarray(X)
    return X.mean(axis=tuple(range(1, X.ndim - 1)), dtype=np.float64)


def load_indian_pines_spectra(patch: int = 5) -> RealDataset:
    """Patch-mean spectra of :func:`load_indian_pines_patches` (same split).

    Parameters
    ----------
    patch : int, default=5
        Window side whose pixels are averaged; the same samples as the patch
        loader, so the two are directly comparable.

    Returns
    -------
    RealDataset
        ``X`` of shape ``(n, 200)``, ``channel_axis=None``.
    """
    ds = load_indian_pines_patches(patch)
    return RealDataset(
        name="indian_pines_spectra",
        X_train=patch_mean_spectra(ds.X_train), y_train=ds.y_train,
        X_test=patch_mean_spectra(ds.X_test), y_test=ds.y_test,
        task=ds.task, channel_axis=None,
        description=(f"AVIRIS Indian Pines: mean 200-band spectrum of the {patch}"
                     f" x {patch} patch around each labelled pixel, 16 classes; "
                     "same blocked split and samples as 'indian_pines'."),
        citation=ds.citation, info=ds.info)


# ------------------------------------------------------------------- COVID serology

# Ordered from healthy to worst outcome, so that 'severity' labels are ordinal.
_COVID_SEVERITY = ("Negative", "Mild", "Moderate", "Severe", "Deceased")


def load_covid_serology(
    target: str = "outcome", test_size: float = 1 / 3, random_state: int = 0
) -> RealDataset:
    """Systems serology of COVID-19 patients as 6 x 11 antigen-receptor matrices.

    tensorly ships a 438 x 6 x 11 tensor (samples x antigens x antibody isotypes
    and Fc receptors), pre-processed by its authors: each of the 66 features is
    centred to mean 0 over the 438 samples (standard deviations 0.5..2.4, values
    about -4.5..3.6), and one categorical status per sample:
    Negative 39, Mild 7, Moderate 122, Severe 196, Deceased 74.  There is no
    continuous outcome, so the task is classification.

    Parameters
    ----------
    target : {'outcome', 'status', 'severity'}, default='outcome'
        ``'outcome'``: COVID-positive samples only (399), 1 = deceased,
        0 = survived (mild, moderate or severe), the mortality question of the
        origin study.  ``'status'``: all samples, 1 = COVID-positive,
        0 = negative.  ``'severity'``: all samples, five ordered classes 0..4
        (negative, mild, moderate, severe, deceased).
    test_size : float, default=1/3
        Fraction held out, stratified on the labels.
    random_state : int, default=0
        Seed of the split.

    Returns
    -------
    RealDataset
        ``X`` of shape ``(n, 6, 11)`` float64, ``channel_axis=None``.

    Notes
    -----
    The split is per sample: tensorly ships no patient identifiers, and the
    origin study sampled some patients more than once, so test scores may be
    optimistic compared with a per-patient split.
    """
    import tensorly.datasets

    bunch = tensorly.datasets.load_covid19_serology()
    X = np.asarray(bunch.tensor, dtype=np.float64)
    status = np.asarray(bunch.ticks[0]).astype(str)
    antigens, receptors = list(bunch.ticks[1]), list(bunch.ticks[2])
    if target == "outcome":
        mask = status != "Negative"
        X, y = X[mask], (status[mask] == "Deceased").astype(np.int64)
        class_names: tuple[str, ...] = ("Survived", "Deceased")
    elif target == "status":
        y = (status != "Negative").astype(np.int64)
        class_names = ("Negative", "COVID-positive")
    elif target == "severity":
        y = np.array([_COVID_SEVERITY.index(s) for s in status], dtype=np.int64)
        class_names = _COVID_SEVERITY
    else:
        raise ValueError(
            f"target must be 'outcome', 'status' or 'severity', got {target!r}")
    X_tr, X_te, y_tr, y_te = _stratified_split(X, y, test_size, random_state)
    return RealDataset(
        name="covid_serology", X_train=X_tr, y_train=y_tr, X_test=X_te, y_test=y_te,
        task="classification", channel_axis=None,
        description=("Serum antibody profiles: 6 SARS-CoV-2 antigens x 11 "
                     "isotypes / Fc receptors per sample (centred per feature, "
                     f"about -4.5..3.6); target {target!r} "
                     f"({' / '.join(class_names)}); "
                     f"stratified split, test_size={test_size:.3g}, "
                     f"random_state={random_state}."),
        citation=("T. Zohar, C. Loos, S. Fischinger et al., 'Compromised Humoral "
                  "Functional Evolution Tracks with SARS-CoV-2 Mortality', Cell "
                  "183(6):1508-1519, 2020; tensor form: Z. C. Tan, M. C. Murphy, "
                  "H. S. Alpay, S. D. Taylor and A. S. Meyer, 'Tensor-structured "
                  "decomposition improves systems serology analysis', Molecular "
                  "Systems Biology 17(9):e10243, 2021."),
        info={"target": target, "class_names": class_names, "antigens": antigens,
              "receptors": receptors,
              "value_scale": "centred per feature by the authors, std 0.5..2.4"},
    )


# ------------------------------------------------------------------ UCR / UEA (.ts)

#: sktime wheel whose ``sktime/datasets/data`` folder the ``.ts`` files come from.
SKTIME_VERSION = "1.2.0"

# SHA-256 of each file as shipped in sktime 1.2.0: fetching checks them, so a
# later wheel that edits a file cannot silently change the benchmark.
_TS_SHA256 = {
    "ACSF1_TEST": "93e8aaeb44a10af181d24a156e60da7021193cd990ca28f263fccf3b905bfebf",
    "ACSF1_TRAIN": "0646b90dc4843e02baed6b2ba345c5601a4991b6796565489cef1b2d92a7537b",
    "ArrowHead_TEST":
        "5417dab42626d41df5e435bb22458c2df40dfad4bcd3b59559bbe72e20e84904",
    "ArrowHead_TRAIN":
        "a83c470aaf611a5f5284377cce27a5fc9f6292bc3d110257b0fd4905ced5ee72",
    "Covid3Month_TEST":
        "5bf6d4ce5cce67735f0893673221c86f10effe284cf4555a162060329b388bea",
    "Covid3Month_TRAIN":
        "8a58e6186143714d47dfeb2a24e954ef1fb5e7a1d72344b6bb9bbce10ccdfd6f",
    "ItalyPowerDemand_TEST":
        "26122451f87dd0387ef90b18bc8a86c041371b8a1c068004922b939971247144",
    "ItalyPowerDemand_TRAIN":
        "341269cb7e6cef96846b30e774580beec79addb93848ba360145219115a74b7c",
    "JapaneseVowels_TEST":
        "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462",
    "JapaneseVowels_TRAIN":
        "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
    "OSULeaf_TEST": "6c549dd354f9e42d5985fa5fab75321ca9acefc7873457e71467fc8a31f107ce",
    "OSULeaf_TRAIN": "86b9d6e860414ffd26cebc62fff84ffb37fa588ef3e5bf79e4094a437c36ddfc",
}

_UCR_ARCHIVE = ("H. A. Dau, A. Bagnall, K. Kamgar et al., 'The UCR Time Series "
                "Archive', IEEE/CAA Journal of Automatica Sinica 6(6):1293-1305, "
                "2019.")

# registry name -> (file stem, description, citation of the data's origin)
_TS_META: dict[str, tuple[str, str, str]] = {
    "japanese_vowels": (
        "JapaneseVowels",
        "Nine male speakers uttering /ae/: 12 LPC cepstrum coefficients over 7..29 "
        "frames, padded to 29 by repeating the last frame; classify the speaker.",
        "M. Kudo, J. Toyama and M. Shimbo, 'Multidimensional Curve Classification "
        "Using Passing-Through Regions', Pattern Recognition Letters "
        "20(11-13):1103-1111, 1999; archived in A. Bagnall, H. A. Dau, J. Lines "
        "et al., 'The UEA multivariate time series classification archive, 2018', "
        "arXiv:1811.00075, 2018."),
    "arrowhead": (
        "ArrowHead",
        "Outlines of projectile points (arrowheads) as angle-based series of "
        "length 251, z-normalized; 3 classes (Avonlea, Clovis, Mix).",
        "L. Ye and E. Keogh, 'Time Series Shapelets: A New Primitive for Data "
        "Mining', Proc. ACM SIGKDD (KDD), 2009; " + _UCR_ARCHIVE),
    "italy_power_demand": (
        "ItalyPowerDemand",
        "Daily Italian electrical power demand, 24 hourly values, "
        "z-normalized; classify October-March against April-September.",
        "E. Keogh, L. Wei, X. Xi, S. Lonardi, J. Shieh and S. Sirowy, "
        "'Intelligent Icons: Integrating Lite-Weight Data Mining and "
        "Visualization into GUI Operating Systems', Proc. IEEE ICDM, 2006; "
        + _UCR_ARCHIVE),
    "osuleaf": (
        "OSULeaf",
        "Leaf outlines as series of length 427 (boundary traced from "
        "segmented images), z-normalized; 6 species of maple and oak.",
        "A. Gandhi, 'Content-Based Image Retrieval: Plant Species "
        "Identification', MSc thesis, Oregon State University, 2002; "
        + _UCR_ARCHIVE),
    "acsf1": (
        "ACSF1",
        "Power consumption of home appliances (ACS-F1), length 1460, "
        "z-normalized; 10 appliance categories.",
        "C. Gisler, A. Ridi, D. Zufferey, O. A. Khaled and J. Hennebert, "
        "'Appliance Consumption Signature Database and Recognition Test "
        "Protocols', Proc. WoSSPA, 2013; " + _UCR_ARCHIVE),
    "covid3month": (
        "Covid3Month",
        "Daily confirmed COVID-19 cases per country over three months (84 "
        "raw counts); regress the country's death rate on 1 April 2020.",
        "C. W. Tan, C. Bergmeir, F. Petitjean and G. I. Webb, 'Time Series "
        "Extrinsic Regression: Predicting Numeric Values from Time Series "
        "Data', Data Mining and Knowledge Discovery 35:1032-1060, 2021 (data "
        "from the WHO COVID-19 database)."),
}

TS_DATASETS: tuple[str, ...] = tuple(stem for stem, _, _ in _TS_META.values())


def ts_data_home() -> Path:
    """Folder searched for the UCR/UEA ``.ts`` files.

    Returns
    -------
    Path
        ``$SKTENSORCNN_TS_DATA`` when set, else ``~/.cache/sktensorcnn/ts``
        (``$XDG_CACHE_HOME`` replaces ``~/.cache`` when set).  Files may lie
        in it flat (``ArrowHead_TRAIN.ts``) or per data set
        (``ArrowHead/ArrowHead_TRAIN.ts``, the layout
        :func:`fetch_sktime_ts_files` writes).
    """
    env = os.environ.get("SKTENSORCNN_TS_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "sktensorcnn" / "ts"


def fetch_sktime_ts_files(
    dest: str | os.PathLike | None = None,
    names: Iterable[str] = TS_DATASETS,
    version: str | None = SKTIME_VERSION,
    verify: bool = True,
) -> list[Path]:
    """Download sktime's wheel with pip and keep only some of its ``.ts`` files.

    sktime itself is neither installed nor imported: the wheel (a zip) is read
    for ``sktime/datasets/data/<Name>/<Name>_{TRAIN,TEST}.ts`` and thrown away.
    This uses the Python package registry, like any ``pip`` call; nothing else.

    Parameters
    ----------
    dest : str or path-like, optional
        Target folder, default :func:`ts_data_home`.  Files are written as
        ``dest/<Name>/<Name>_TRAIN.ts``.
    names : iterable of str
        Data set stems (as in the wheel), default all of :data:`TS_DATASETS`.
    version : str or None, default=SKTIME_VERSION
        sktime version to download, ``None`` for the newest.
    verify : bool, default=True
        Check each file against the SHA-256 recorded for sktime 1.2.0.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    FileNotFoundError
        When the wheel lacks a requested data set.
    ValueError
        When ``verify`` and a file's checksum differs.
    """
    dest = Path(dest) if dest is not None else ts_data_home()
    names = list(names)
    requirement = f"sktime=={version}" if version else "sktime"
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        # --no-deps: only the wheel is needed, never its dependencies;
        # --only-binary: never build an sdist; --ignore-requires-python: the
        # package is never run, so the interpreter's version is irrelevant.
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps",
             "--only-binary=:all:", "--ignore-requires-python", "--quiet",
             "-d", tmp, requirement],
            check=True)
        wheels = sorted(Path(tmp).glob("sktime-*.whl"))
        if not wheels:
            raise FileNotFoundError(f"pip download {requirement} gave no wheel")
        with zipfile.ZipFile(wheels[0]) as wheel:
            members = set(wheel.namelist())
            for name in names:
                for part in ("TRAIN", "TEST"):
                    stem = f"{name}_{part}"
                    member = f"sktime/datasets/data/{name}/{stem}.ts"
                    if member not in members:
                        raise FileNotFoundError(
                            f"{member} is not in {wheels[0].name}")
                    data = wheel.read(member)
                    digest = hashlib.sha256(data).hexdigest()
                    if verify and stem in _TS_SHA256 and digest != _TS_SHA256[stem]:
                        raise ValueError(
                            f"{member} in {wheels[0].name} differs from the copy "
                            f"in sktime {SKTIME_VERSION} (sha256 {digest}); pass "
                            f"version={SKTIME_VERSION!r} or verify=False")
                    target = dest / name / f"{stem}.ts"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                    written.append(target)
    return written


def read_ts(
    path: str | os.PathLike,
) -> tuple[list[np.ndarray], np.ndarray, dict[str, str]]:
    """Parse a ``.ts`` file of the UCR/UEA and Monash archives.

    The format: ``#`` comment lines, ``@key value`` header lines up to
    ``@data``, then one sample per line.  A sample's dimensions are separated
    by ``:``, the values of one dimension by ``,``; when the header has
    ``@classLabel true ...`` or ``@targetLabel true`` the last ``:`` field is
    the label.  ``?`` marks a missing value.  Header keys are matched without
    regard to case (the archives spell them both ways).

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    series : list of ndarray
        One float64 array ``(n_dims, length)`` per sample; missing values are
        NaN; lengths may differ between samples.
    labels : ndarray
        Labels as strings (classification) or float64 targets (regression);
        empty when the file has none.
    header : dict
        Header values by lower-case key (``'problemname'``, ``'classlabel'``...).
    """
    header: dict[str, str] = {}
    series: list[np.ndarray] = []
    labels: list[str] = []
    has_label = is_target = False
    in_data = False
    with open(path, encoding="utf-8") as handle:
        for lineno, raw in enumerate(handle, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if not line.startswith("@"):
                    raise ValueError(f"{path}:{lineno}: data before '@data'")
                key, _, value = line[1:].partition(" ")
                key = key.lower()
                if key == "data":
                    in_data = True
                    if header.get("timestamps", "false").lower() == "true":
                        raise NotImplementedError(
                            f"{path}: time-stamped .ts files are not supported")
                    is_target = _header_flag(header, "targetlabel")
                    has_label = is_target or _header_flag(header, "classlabel")
                else:
                    header[key] = value.strip()
                continue
            fields = line.split(":")
            if has_label:
                labels.append(fields.pop().strip())
            series.append(_parse_dims(fields, path, lineno))
    if not in_data:
        raise ValueError(f"{path}: no '@data' line")
    out_labels = (np.asarray(labels, dtype=np.float64) if is_target
                  else np.asarray(labels, dtype=str))
    return series, out_labels, header


def _header_flag(header: dict[str, str], key: str) -> bool:
    """Whether a header value starts with ``true`` (``@classLabel true 1 2``)."""
    words = header.get(key, "").split()
    return bool(words) and words[0].lower() == "true"


def _parse_dims(fields: Sequence[str], path: Any, lineno: int) -> np.ndarray:
    try:
        # numpy parses 'nan' but not '?', the archives' missing-value mark
        dims = [np.asarray(f.replace("?", "nan").split(","), dtype=np.float64)
                for f in fields]
    except ValueError as exc:
        raise ValueError(f"{path}:{lineno}: {exc}") from None
    lengths = {len(d) for d in dims}
    if len(lengths) != 1:
        # Dimensions of one sample share a length in every archive file we read;
        # pad them anyway rather than fail, with the same rule as across samples.
        return _pad_stack([d[None] for d in dims], max(lengths))[:, 0]
    return np.stack(dims)


def _pad_stack(series: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Stack ``(n_dims, l_i)`` arrays into ``(n, n_dims, length)``.

    Shorter series are extended by repeating their last value: unlike zeros
    this adds no artificial step at the end, which a convolution would see as
    a feature, and it keeps each channel's level.
    """
    n_dims = series[0].shape[0]
    out = np.empty((len(series), n_dims, length), dtype=np.float64)
    for k, s in enumerate(series):
        if s.shape[1] > length:
            raise ValueError(f"sample {k} has length {s.shape[1]} > {length}")
        out[k, :, :s.shape[1]] = s
        out[k, :, s.shape[1]:] = s[:, -1:]
    return out


def _find_ts(home: Path, stem: str, part: str) -> Path:
    for candidate in (home / stem / f"{stem}_{part}.ts", home / f"{stem}_{part}.ts"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{stem}_{part}.ts not found under {home}. Prepare the files once with "
        "'python asv_benchmarks/real_data.py --fetch-ts' (pip-downloads sktime's "
        f"wheel {SKTIME_VERSION} and keeps its .ts files), or set "
        "SKTENSORCNN_TS_DATA to a folder holding them.")


def _load_ts(name: str, data_home: str | os.PathLike | None) -> RealDataset:
    stem, description, citation = _TS_META[name]
    home = Path(data_home) if data_home is not None else ts_data_home()
    (s_tr, y_tr, header), (s_te, y_te, _) = (
        read_ts(_find_ts(home, stem, part)) for part in ("TRAIN", "TEST"))
    # One length for both splits so that train and test have the same shape.
    length = max(s.shape[1] for s in (*s_tr, *s_te))
    X_tr, X_te = _pad_stack(s_tr, length), _pad_stack(s_te, length)
    if _header_flag(header, "targetlabel"):
        task = "regression"
    else:
        task = "classification"
        # The archives' labels here are integers written as text; keep their
        # values (not re-encoded) so that they match the archives' papers.
        y_tr, y_te = y_tr.astype(np.int64), y_te.astype(np.int64)
    if X_tr.shape[1] == 1:
        X_tr, X_te, channel_axis = X_tr[:, 0], X_te[:, 0], None
    else:
        channel_axis = 1
    lengths = sorted({s.shape[1] for s in (*s_tr, *s_te)})
    return RealDataset(
        name=name, X_train=X_tr, y_train=y_tr, X_test=X_te, y_test=y_te,
        task=task, channel_axis=channel_axis,
        description=description + " Official TRAIN/TEST split.",
        citation=citation,
        info={"file_stem": stem, "source": str(home),
              "lengths": (lengths[0], lengths[-1]),
              "padding": ("last value repeated" if len(lengths) > 1 else "none")},
    )


def load_ts_dataset(name: str,
                    data_home: str | os.PathLike | None = None) -> RealDataset:
    """One of the UCR / UEA sets of :data:`TS_DATASETS` by registry name
    (``'japanese_vowels'``, ``'arrowhead'``, ``'italy_power_demand'``,
    ``'osuleaf'``, ``'acsf1'``, ``'covid3month'``), official split.

    Parameters
    ----------
    name : str
    data_home : str or path-like, optional
        Folder of the ``.ts`` files, default :func:`ts_data_home`.

    Returns
    -------
    RealDataset
        Univariate sets as ``(n, length)`` with ``channel_axis=None``;
        JapaneseVowels as ``(n, 12, 29)`` with ``channel_axis=1`` (shorter
        utterances padded by repeating their last frame); Covid3Month with a
        float target.
    """
    if name not in _TS_META:
        raise ValueError(f"unknown .ts data set {name!r}; use one of "
                         f"{sorted(_TS_META)}.")
    return _load_ts(name, data_home)


#: Registry name -> loader with its default arguments.
DATASETS: dict[str, Callable[[], RealDataset]] = {
    "digits": load_digits_split,
    "fashion_mnist": load_fashion_mnist,
    "indian_pines": load_indian_pines_patches,
    "covid_serology": load_covid_serology,
    "japanese_vowels": partial(load_ts_dataset, "japanese_vowels"),
    "arrowhead": partial(load_ts_dataset, "arrowhead"),
    "italy_power_demand": partial(load_ts_dataset, "italy_power_demand"),
    "osuleaf": partial(load_ts_dataset, "osuleaf"),
    "acsf1": partial(load_ts_dataset, "acsf1"),
    "covid3month": partial(load_ts_dataset, "covid3month"),
}


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: fetch the ``.ts`` files and/or summarize data sets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="data sets to summarize, among "
                             + ", ".join(DATASETS) + " (default: all)")
    parser.add_argument("--fetch-ts", action="store_true",
                        help="download sktime's wheel and keep its .ts files in "
                             "ts_data_home() (or --dest)")
    parser.add_argument("--dest", help="target folder for --fetch-ts")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(DATASETS))
    if unknown:
        parser.error("unknown data set(s): " + ", ".join(unknown))
    if args.fetch_ts:
        for path in fetch_sktime_ts_files(args.dest):
            print(f"wrote {path}")
        if not args.names:
            return
    for name in args.names or DATASETS:
        try:
            ds = DATASETS[name]()
        except FileNotFoundError as exc:
            print(f"{name}: MISSING: {exc}")
            continue
        print(ds.summary())


if __name__ == "__main__":
    main()
