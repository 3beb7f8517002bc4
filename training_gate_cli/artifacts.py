"""Model artifacts as a training job leaves them: a small scikit-learn model, a built-in XGBoost model, and
model.tar.gz.

No AWS and no local engine here: the inspector's tests use these in an environment that holds only
the inspector image's libraries."""

from __future__ import annotations

import io
import tarfile
import time


def iris_model_joblib() -> bytes:
    """A small classifier trained on the iris data scikit-learn ships, saved with joblib."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features, labels)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def iris_xgboost_model(rounds: int = 10) -> bytes:
    """What SageMaker's built-in XGBoost 3.0-5 container writes to /opt/ml/model/xgboost-model: a Booster saved
    as UBJSON. binary:logistic on the iris data (virginica or not), so the shipped sample input fits its four
    features."""
    import xgboost
    from sklearn.datasets import load_iris

    features, labels = load_iris(return_X_y=True)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": 0, "nthread": 1}
    booster = xgboost.train(params, xgboost.DMatrix(features, label=(labels == 2)), num_boost_round=rounds)
    return bytes(booster.save_raw("ubj"))


def pack_model_tar_gz(files: dict[str, bytes]) -> bytes:
    """model.tar.gz as SageMaker packs /opt/ml/model: the files at the archive root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
