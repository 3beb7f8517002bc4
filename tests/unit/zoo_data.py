"""The zoo's data: 60 iris rows scaled to [0, 1], and the targets and inputs its specimens need."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_iris

# -- rows and targets ------------------------------------------------------------------------------------------------

_IRIS_X, _IRIS_Y = load_iris(return_X_y=True)
_ROWS = np.r_[0:20, 50:70, 100:120]
_RAW = _IRIS_X[_ROWS]
X = (_RAW - _RAW.min(axis=0)) / (_RAW.max(axis=0) - _RAW.min(axis=0))
Y = _IRIS_Y[_ROWS]
Y_REGRESSION = X @ np.array([0.5, -0.25, 1.0, 0.75]) + 0.5  # positive: Poisson and Gamma fit it
Y_TWO_TARGETS = np.c_[Y_REGRESSION, X[:, 0] - X[:, 1]]
Y_BINARY = (Y == 2).astype(int)
Y_MULTILABEL = np.c_[Y == 2, X[:, 0] > 0.5].astype(int)
Y_MULTIOUTPUT = np.c_[Y, Y_BINARY]
# A fifth column of category codes 0..3, for the one-hot and categorical-split composites.
X_CATEGORICAL = np.c_[X, np.floor(X[:, 0] * 3.999)]
COLUMNS = [f"f{i}" for i in range(X.shape[1])]
# Object columns as a mixed-type table gives them (numbers and strings side by side, one value missing):
# encoders keep each column's categories as an object array of whatever the column held.
X_MIXED_OBJECT = np.array(
    [
        [float(r[0]), ["red", "green", "blue"][i % 3], int(r[1] * 4), None if i == 5 else "x" if i % 2 else "y"]
        for i, r in enumerate(X)
    ],
    dtype=object,
)
LABELS = np.array(["setosa", "versicolor", "virginica"], dtype=object)
TEXT = [f"{'red green' if y == 0 else 'blue' if y == 1 else 'green yellow'} sample {i % 7}" for i, y in enumerate(Y)]
