"""Rank selection on [Compressed CNNs]'s T1 data (Tucker ranks (2, 2, 2, 1)): the plain
``GridSearchCV`` over ``ranks`` against :class:`~sktensorcnn.model_selection.RankPathCV`
on the same candidates and folds (scikit-learn integration issue: the path must
pick the same ranks faster)."""

import warnings

from sklearn.model_selection import GridSearchCV, KFold

from sktensorcnn import TuckerCNNRegressor
from sktensorcnn.datasets import make_cnn_regression
from sktensorcnn.model_selection import RankPathCV

LAYER = dict(kernel_size=(5, 5, 3), pool_size=3, n_kernels=2, random_state=0)
PATH = [(1, 1, 1, 1), (2, 1, 1, 1), (2, 2, 1, 1), (2, 2, 2, 1), (3, 3, 2, 1),
        (3, 3, 3, 1), (2, 2, 2, 2), (3, 3, 3, 2)]


class RankSelection:
    params = ([2000, 10000],)
    param_names = ["n_samples"]
    timeout = 900

    def setup(self, n_samples):
        self.X, self.y, _ = make_cnn_regression("T1", n_samples=n_samples,
                                                random_state=0)
        self.cv = KFold(3, shuffle=True, random_state=0)
        TuckerCNNRegressor(**LAYER).fit(self.X[:50], self.y[:50])  # compile

    def time_grid_search(self, n_samples):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.grid = GridSearchCV(TuckerCNNRegressor(**LAYER), {"ranks": PATH},
                                     cv=self.cv).fit(self.X, self.y)

    def time_rank_path(self, n_samples):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.path = RankPathCV(TuckerCNNRegressor(**LAYER), PATH,
                                   cv=self.cv).fit(self.X, self.y)
