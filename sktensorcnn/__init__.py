"""sktensorcnn: scikit-learn estimators (regressors and classifiers) for tensor
inputs.

Convolution -> activation -> average pooling -> fully-connected networks on samples of
shape ``(d_1, ..., d_N)`` (optionally with channels), whose stacked kernel tensor is
dense, of low Tucker rank or of low CP rank.
"""

from .classification import CNNClassifier, CPCNNClassifier, TuckerCNNClassifier
from .features import conv_pool_features, features_to_input_space
from .geometry import ConvPoolGeometry
from .regression import CNNRegressor, CPCNNRegressor, TuckerCNNRegressor

__version__ = "0.1.0.dev0"

__all__ = [
    "CNNClassifier",
    "CNNRegressor",
    "CPCNNClassifier",
    "CPCNNRegressor",
    "ConvPoolGeometry",
    "TuckerCNNClassifier",
    "TuckerCNNRegressor",
    "conv_pool_features",
    "features_to_input_space",
]
