"""Generalization bounds by compression, and the noise stability behind them.

Plain functions over fitted estimators (the estimators stay thin), each
returning a small result object with per-sample arrays and summaries:

* margins: :func:`margins`, :func:`margin_loss`;
* noise stability ([Compression bounds], Defs. 3-9): :func:`noise_stability`,
  :func:`noise_sensitivity`, :func:`effective_params`;
* compression: random projection ([Compression bounds], Algorithms 1 and 4:
  :func:`matrix_project`, :func:`matrix_project_conv`,
  :func:`project_compress`), CP / Tucker pruning ([Tensor generalization]:
  :func:`kernel_spectrum`, :func:`tensor_compress`) and rounding
  (:func:`quantize`), each giving a network that predicts;
* bounds for classifiers: :func:`compression_bound`,
  :func:`tensor_compression_bound`, :func:`quantized_bound` and the norm-based
  comparisons :func:`norm_bounds`.

Our network has two layers, conv -> activation -> average pool -> FC, and the
pooling folds into the FC layer, so every quantity is computed exactly.
"""

from .generalization import (
    BoundReport,
    compression_bound,
    effective_params,
    norm_bounds,
    quantized_bound,
    tensor_compression_bound,
)
from .margins import margin_loss, margins
from .projection import (
    CompressedNetwork,
    Compression,
    matrix_project,
    matrix_project_conv,
    project_compress,
)
from .quantization import Quantized, quantize
from .stability import NoiseStability, noise_sensitivity, noise_stability
from .tensor import KernelSpectrum, TensorCompression, kernel_spectrum, tensor_compress

__all__ = [
    "BoundReport",
    "CompressedNetwork",
    "Compression",
    "KernelSpectrum",
    "NoiseStability",
    "Quantized",
    "TensorCompression",
    "compression_bound",
    "effective_params",
    "kernel_spectrum",
    "margin_loss",
    "margins",
    "matrix_project",
    "matrix_project_conv",
    "noise_sensitivity",
    "noise_stability",
    "norm_bounds",
    "project_compress",
    "quantize",
    "quantized_bound",
    "tensor_compress",
    "tensor_compression_bound",
]
