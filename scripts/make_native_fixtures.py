#!/usr/bin/env python3
"""Builds the XGBoost, LightGBM, CatBoost and ONNX model fixtures with the real libraries.

    python scripts/make_native_fixtures.py                 # every environment, rewrites tests/fixtures/native
    python scripts/make_native_fixtures.py --only xgboost-0.90 --only onnx
    python scripts/make_native_fixtures.py --list          # the environments and their pins

Each library version runs in a virtual environment of its own (pinned below, binary wheels only), kept under
`.venv/native-envs/` and rebuilt when its pins change. The environment's interpreter runs this same file as a
worker (`--worker KIND`), which imports nothing of the project: it trains a few small trees on fixed data,
writes the model in each format that version writes, and records the library's own predictions on a fixed
probe input. The parent merges the workers' records into `tests/fixtures/native/manifest.json`.

The versions are the ones SageMaker's built-in XGBoost containers run (0.90-x, 1.0-1, 1.2-x, 1.3-1, 1.5-1,
1.7-1, 3.0-5), 2.1 and the current 3.x for framework mode, LightGBM 3 and 4 (JumpStart), CatBoost 1.2 and
ONNX from skl2onnx and onnx.helper. Old xgboost wheels are `py3-none` and install on Python 3.11 beside a
numpy they accept (1.23: `np.float` still exists there).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures" / "native"
ENVS = REPO / ".venv" / "native-envs"

_OLD_NUMPY = ("numpy==1.23.5", "scipy==1.10.1")
_NUMPY_1 = ("numpy==1.26.4", "scipy==1.13.1")
_NUMPY_2 = ("numpy==2.2.6", "scipy==1.15.3")
_PANDAS = ("pandas==2.2.3", "python-dateutil==2.9.0.post0", "pytz==2025.2", "tzdata==2025.2")
_SKLEARN_OLD_NUMPY = ("scikit-learn==1.2.2", "joblib==1.2.0", "threadpoolctl==3.1.0", "pandas==1.5.3", "pytz==2025.2")
_SKLEARN_NUMPY_1 = ("scikit-learn==1.5.2", "joblib==1.4.2", "threadpoolctl==3.5.0", *_PANDAS)
_SKLEARN_NUMPY_2 = ("scikit-learn==1.6.1", "joblib==1.4.2", "threadpoolctl==3.5.0", *_PANDAS)

# name -> (worker kind, library version, pins). The version is what the worker writes into the manifest.
ENVIRONMENTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "xgboost-0.90": ("xgboost", "0.90", ("xgboost==0.90", *_OLD_NUMPY)),
    "xgboost-1.0.2": ("xgboost", "1.0.2", ("xgboost==1.0.2", *_OLD_NUMPY)),
    "xgboost-1.2.1": ("xgboost", "1.2.1", ("xgboost==1.2.1", *_OLD_NUMPY)),
    "xgboost-1.3.3": ("xgboost", "1.3.3", ("xgboost==1.3.3", *_OLD_NUMPY)),
    "xgboost-1.5.2": ("xgboost", "1.5.2", ("xgboost==1.5.2", *_OLD_NUMPY)),
    "xgboost-1.7.6": ("xgboost", "1.7.6", ("xgboost==1.7.6", *_OLD_NUMPY)),
    "xgboost-2.1.4": ("xgboost", "2.1.4", ("xgboost==2.1.4", *_NUMPY_1)),
    "xgboost-3.0.5": ("xgboost", "3.0.5", ("xgboost==3.0.5", *_NUMPY_1)),
    "xgboost-3.2.0": ("xgboost", "3.2.0", ("xgboost-cpu==3.2.0", *_NUMPY_2)),
    "xgboost-3.1.3": ("xgboost+xgboost-wrappers", "3.1.3", ("xgboost-cpu==3.1.3", *_NUMPY_2, *_SKLEARN_NUMPY_2)),
    "lightgbm-3.3.5": ("lightgbm", "3.3.5", ("lightgbm==3.3.5", *_NUMPY_1)),
    "lightgbm-4.6.0": ("lightgbm", "4.6.0", ("lightgbm==4.6.0", *_NUMPY_2)),
    "lightgbm-4.7.0": ("lightgbm+lightgbm-wrappers", "4.7.0", ("lightgbm==4.7.0", *_NUMPY_2, *_SKLEARN_NUMPY_2)),
    # catboost's other requirements (graphviz, matplotlib, plotly) serve plotting only: left out.
    "catboost-1.2.10": (
        "catboost",
        "1.2.10",
        (
            "catboost==1.2.10",
            "pandas==2.2.3",
            "python-dateutil==2.9.0.post0",
            "pytz==2025.2",
            "tzdata==2025.2",
            "six==1.17.0",
            *_NUMPY_2,
        ),
    ),
    "onnx": (
        "onnx",
        "1.23.2",
        ("onnx==1.23.2", "onnxruntime==1.32.0", "skl2onnx==1.20.0", "scikit-learn==1.6.1", *_NUMPY_2),
    ),
}
# The scikit-learn wrappers (XGBClassifier, LGBMClassifier...) as framework mode pickles them, with the
# scikit-learn and pandas of their time: the states they hold are what the gate's loader admits for them.
for _version, _pins in {
    "1.0.2": ("xgboost==1.0.2", *_OLD_NUMPY, *_SKLEARN_OLD_NUMPY),
    "1.2.1": ("xgboost==1.2.1", *_OLD_NUMPY, *_SKLEARN_OLD_NUMPY),
    "1.3.3": ("xgboost==1.3.3", *_OLD_NUMPY, *_SKLEARN_OLD_NUMPY),
    "1.5.2": ("xgboost==1.5.2", *_OLD_NUMPY, *_SKLEARN_OLD_NUMPY),
    "1.7.6": ("xgboost==1.7.6", *_OLD_NUMPY, *_SKLEARN_OLD_NUMPY),
    "2.1.4": ("xgboost-cpu==2.1.4", *_NUMPY_1, *_SKLEARN_NUMPY_1),
    "3.0.5": ("xgboost-cpu==3.0.5", *_NUMPY_1, *_SKLEARN_NUMPY_1),
    "3.2.0": ("xgboost-cpu==3.2.0", *_NUMPY_2, *_SKLEARN_NUMPY_2),
}.items():
    ENVIRONMENTS[f"xgboost-wrappers-{_version}"] = ("xgboost-wrappers", _version, _pins)
for _version, _pins in {
    "3.3.5": ("lightgbm==3.3.5", *_NUMPY_1, *_SKLEARN_NUMPY_1),
    "4.6.0": ("lightgbm==4.6.0", *_NUMPY_2, *_SKLEARN_NUMPY_2),
}.items():
    ENVIRONMENTS[f"lightgbm-wrappers-{_version}"] = ("lightgbm-wrappers", _version, _pins)
NO_DEPS = {"catboost-1.2.10"}
ROUNDS = 3
NUM_FEATURE = 5


# ----------------------------------------------------------------------------------------------------------------
# Parent: environments and the manifest.


def _pip_environment() -> dict[str, str]:
    # PyPI only: no local wheel directory or extra index decides which build a pin resolves to.
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def ensure_env(name: str) -> Path:
    _, _, pins = ENVIRONMENTS[name]
    env = ENVS / name
    stamp = env / ".pins.sha256"
    digest = hashlib.sha256("\n".join([sys.version, *pins, str(name in NO_DEPS)]).encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return env
    shutil.rmtree(env, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    pip += ["--only-binary=:all:", *(["--no-deps"] if name in NO_DEPS else []), *pins]
    try:
        subprocess.run(pip, check=True, env=_pip_environment())
    except subprocess.CalledProcessError:
        shutil.rmtree(env, ignore_errors=True)
        raise
    stamp.write_text(digest)
    return env


def run_worker(name: str, out: Path) -> list[dict]:
    kind, version, _ = ENVIRONMENTS[name]
    env = ensure_env(name)
    records = out / f".{name}.records.json"
    command = [str(env / "bin" / "python"), str(Path(__file__).resolve()), "--worker", kind]
    command += ["--version", version, "--out", str(out), "--records", str(records)]
    # The worker sees nothing of the project: no PYTHONPATH, a clean working directory.
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environment["PYTHONWARNINGS"] = "ignore"
    subprocess.run(command, check=True, cwd=out, env=environment)
    found = json.loads(records.read_text())
    records.unlink()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", help="an environment name (repeatable); default: all")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--version", help=argparse.SUPPRESS)
    parser.add_argument("--records", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.version, args.out, args.records)
    if args.list:
        for name, (_, _, pins) in ENVIRONMENTS.items():
            print(f"{name}: {' '.join(pins)}")
        return 0
    names = args.only or list(ENVIRONMENTS)
    unknown = sorted(set(names) - set(ENVIRONMENTS))
    if unknown:
        parser.error(f"unknown environment(s): {', '.join(unknown)}")
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"fixtures": []}
    kept = [f for f in manifest["fixtures"] if f["environment"] not in names]
    failed: list[str] = []
    for name in names:
        print(f"{name}: building", flush=True)
        try:
            records = run_worker(name, args.out)
        except subprocess.CalledProcessError as exc:
            print(f"{name}: FAILED ({exc})", file=sys.stderr)
            failed.append(name)
            continue
        for record in records:
            record["environment"] = name
        kept += records
        print(f"{name}: {len(records)} fixtures", flush=True)
    kept.sort(key=lambda f: f["path"])
    manifest = {
        "generated_by": "scripts/make_native_fixtures.py",
        "probe": PROBE_ROWS,
        "environments": {n: list(ENVIRONMENTS[n][2]) for n in sorted({f["environment"] for f in kept})},
        "fixtures": kept,
    }
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    total = sum((args.out / f["path"]).stat().st_size for f in kept)
    print(f"{len(kept)} fixtures, {total / 1e6:.2f} MB; manifest {manifest_path.relative_to(REPO)}")
    return 1 if failed else 0


# ----------------------------------------------------------------------------------------------------------------
# Workers: run inside a fixture environment, import only that environment's libraries.

# The probe: fixed rows every fixture predicts, one with a missing value (the default direction), one of zeros.
PROBE_ROWS = [
    [0.5, -1.25, 2.0, 0.0, 1.0],
    [-1.5, 0.75, -0.5, 1.25, 0.0],
    [2.25, 1.5, 0.25, -2.0, 2.0],
    [0.0, 0.0, 0.0, 0.0, 0.0],
    [-0.25, -2.5, 1.75, 0.5, 1.0],
    [1.0, None, -1.0, 0.75, 2.0],
]


def _data():
    import numpy as np

    rng = np.random.RandomState(7)
    x = rng.normal(size=(240, NUM_FEATURE)).astype(np.float32)
    x[:, 4] = rng.randint(0, 3, size=240)  # a small integer column (categorical where a library takes it)
    x[rng.rand(240) < 0.05, 1] = np.nan
    signal = x[:, 0] + 0.5 * np.nan_to_num(x[:, 1]) - 0.75 * x[:, 2] + 0.3 * x[:, 4]
    labels = {
        "binary": (signal > 0).astype(np.float32),
        "multiclass": np.digitize(signal, [-0.6, 0.6]).astype(np.float32),
        "regression": (signal + 0.1 * rng.normal(size=240)).astype(np.float32),
        "ranking": np.digitize(signal, [-1.0, 0.0, 1.0]).astype(np.float32),
    }
    groups = [12] * 20
    probe = np.array([[np.nan if v is None else v for v in row] for row in PROBE_ROWS], dtype=np.float32)
    return x, labels, groups, probe


def _floats(values) -> list:
    import numpy as np

    return np.asarray(values, dtype=np.float64).round(9).tolist()


def _record(path: Path, out: Path, **fields) -> dict:
    return {"path": str(path.relative_to(out)), "bytes": path.stat().st_size, **fields}


XGBOOST_OBJECTIVES = {
    "binary": {"objective": "binary:logistic"},
    "multiclass": {"objective": "multi:softprob", "num_class": 3},
    "regression": {"objective": "reg:squarederror"},
    "ranking": {"objective": "rank:pairwise"},
}


def _xgboost_worker(version: str, out: Path) -> list[dict]:
    import pickle

    import xgboost as xgb

    assert xgb.__version__ == version, (xgb.__version__, version)
    x, labels, groups, probe = _data()
    major, minor = (int(p) for p in version.split(".")[:2])
    directory = out / "xgboost" / version
    directory.mkdir(parents=True, exist_ok=True)
    records = []
    cases = dict(XGBOOST_OBJECTIVES)
    if version == "0.90":
        # 0.90 users wrote reg:linear, renamed reg:squarederror later; the gate must read both.
        cases["regression-linear-name"] = {"objective": "reg:linear"}
        cases["regression-gblinear"] = {"objective": "reg:squarederror", "booster": "gblinear"}
        cases["poisson"] = {"objective": "count:poisson"}
    if version == "1.7.6":
        cases["binary-dart"] = {"objective": "binary:logistic", "booster": "dart", "rate_drop": 0.1}
        cases["regression-gblinear"] = {"objective": "reg:squarederror", "booster": "gblinear"}
        cases["binary-forest"] = {"objective": "binary:logistic", "num_parallel_tree": 3, "subsample": 0.8}
        cases["multiclass-softmax"] = {"objective": "multi:softmax", "num_class": 3}
    if version == "3.0.5":
        cases["binary-forest"] = {"objective": "binary:logistic", "num_parallel_tree": 3, "subsample": 0.8}
        cases["binary-logitraw"] = {"objective": "binary:logitraw"}
    if (major, minor) >= (2, 0):
        # Column 4 as a categorical feature: trees with categorical splits (split_type, categories).
        cases["binary-categorical"] = {"objective": "binary:logistic", "tree_method": "hist", "max_cat_to_onehot": 1}
    for case, extra in cases.items():
        family = case.split("-")[0]
        label = labels["regression"] if family == "poisson" else labels[family]
        categorical = {"feature_types": ["q"] * 4 + ["c"], "enable_categorical": True} if "categorical" in case else {}
        if categorical:
            label = ((x[:, 4] == 1) ^ (x[:, 0] > 0)).astype(label.dtype)
        if family == "poisson":
            label = (label > 0).astype(label.dtype) * 2
        dtrain = xgb.DMatrix(x, label=label, **categorical)
        if family == "ranking":
            dtrain.set_group(groups)
        params = {"max_depth": 3, "eta": 0.3, "seed": 0, "nthread": 1, "tree_method": "exact", **extra}
        if extra.get("booster") == "gblinear":
            params.pop("tree_method")
            params.pop("max_depth")
        booster = xgb.train(params, dtrain, num_boost_round=ROUNDS)
        dprobe = xgb.DMatrix(probe, **categorical)
        predictions = booster.predict(dprobe)
        margins = booster.predict(dprobe, output_margin=True)
        common = {
            "framework": "xgboost",
            "library_version": version,
            "family": family,
            "case": case,
            "objective": extra["objective"],
            "booster": extra.get("booster", "gbtree"),
            "num_feature": NUM_FEATURE,
            "num_class": extra.get("num_class", 0),
            "predictions": _floats(predictions),
            "margins": _floats(margins),
        }
        formats: list[tuple[str, str]] = []
        if (major, minor) < (2, 0):
            formats.append(("old-binary", f"{case}.model"))
        if (major, minor) >= (1, 0):
            formats.append(("json", f"{case}.json"))
        if (major, minor) >= (1, 6):
            formats.append(("ubjson", f"{case}.ubj"))
        for fmt, name in formats:
            path = directory / name
            booster.save_model(str(path))
            records.append(_record(path, out, format=fmt, **common))
        # The built-in container's `xgboost-model` up to 1.2 is this pickle; later, framework mode's.
        # Those containers ran Python 3.5-3.7, whose default pickle protocol is 3.
        state = (
            "old-binary"
            if (major, minor) < (1, 0)
            else "snapshot"
            if (major, minor) < (1, 3)
            else "json-snapshot"
            if (major, minor) < (1, 6)
            else "ubjson-snapshot"
        )
        path = directory / f"{case}.pkl"
        path.write_bytes(pickle.dumps(booster, protocol=3 if (major, minor) < (1, 3) else 4))
        records.append(_record(path, out, format=f"pickle-{state}", **common))
    return records


LIGHTGBM_OBJECTIVES = {
    "binary": {"objective": "binary"},
    "multiclass": {"objective": "multiclass", "num_class": 3},
    "regression": {"objective": "regression"},
    "ranking": {"objective": "lambdarank"},
}


def _lightgbm_worker(version: str, out: Path) -> list[dict]:
    import pickle

    import lightgbm as lgb

    assert lgb.__version__ == version, (lgb.__version__, version)
    x, labels, groups, probe = _data()
    directory = out / "lightgbm" / version
    directory.mkdir(parents=True, exist_ok=True)
    records = []
    cases = {name: (params, None) for name, params in LIGHTGBM_OBJECTIVES.items()}
    # Category 1 of column 4 flips the label: a split on it is a categorical split (cat_threshold bitsets).
    cases["binary-categorical"] = ({"objective": "binary", "min_data_per_group": 5, "cat_smooth": 1}, [4])
    if not version.startswith("3."):
        cases["regression-linear-tree"] = ({"objective": "regression", "linear_tree": True}, None)
    for case, (extra, categorical) in cases.items():
        family = case.split("-")[0]
        params = {"num_leaves": 6, "learning_rate": 0.3, "min_data_in_leaf": 5, "verbose": -1, "seed": 0, **extra}
        params["num_threads"] = 1
        label = labels[family]
        if categorical:
            label = ((x[:, 4] == 1) ^ (x[:, 0] > 0)).astype(label.dtype)
        dataset = lgb.Dataset(
            x, label=label, group=groups if family == "ranking" else None,
            categorical_feature=categorical or "auto", params={"verbose": -1},
        )  # fmt: skip
        booster = lgb.train(params, dataset, num_boost_round=ROUNDS)
        common = {
            "framework": "lightgbm",
            "library_version": version,
            "family": family,
            "case": case,
            "objective": extra["objective"],
            "num_feature": NUM_FEATURE,
            "num_class": extra.get("num_class", 1),
            "predictions": _floats(booster.predict(probe)),
            "margins": _floats(booster.predict(probe, raw_score=True)),
        }
        path = directory / f"{case}.txt"
        booster.save_model(str(path))
        records.append(_record(path, out, format="text", **common))
        path = directory / f"{case}.pkl"
        path.write_bytes(pickle.dumps(booster, protocol=4))
        records.append(_record(path, out, format="pickle", **common))
    return records


def _catboost_worker(version: str, out: Path) -> list[dict]:
    import pickle

    import catboost

    assert catboost.__version__ == version, (catboost.__version__, version)
    x, labels, groups, probe = _data()
    directory = out / "catboost" / version
    directory.mkdir(parents=True, exist_ok=True)
    x = x.copy()
    x[:, 1] = [0.0 if v != v else v for v in x[:, 1]]
    records = []
    group_id = [i for i, size in enumerate(groups) for _ in range(size)]
    cases = {
        "binary": (catboost.CatBoostClassifier, {"loss_function": "Logloss"}),
        "multiclass": (catboost.CatBoostClassifier, {"loss_function": "MultiClass"}),
        "regression": (catboost.CatBoostRegressor, {"loss_function": "RMSE"}),
        "ranking": (catboost.CatBoostRanker, {"loss_function": "YetiRank"}),
    }
    # Column 4 as a categorical feature: CatBoost takes its values as integers or text, never floats.
    cases["binary-categorical"] = (catboost.CatBoostClassifier, {"loss_function": "Logloss", "cat_features": [4]})
    for case, (cls, extra) in cases.items():
        family = case.split("-")[0]
        settings = {"iterations": 5, "depth": 3, "random_seed": 0, "verbose": False, "thread_count": 1}
        model = cls(**settings, allow_writing_files=False, **extra)
        fit = {"group_id": group_id} if family == "ranking" else {}
        data, rows = x, probe
        if "cat_features" in extra:
            data = [[*row[:4], int(row[4])] for row in x.tolist()]
            rows = [[*row[:4], int(row[4])] for row in probe.tolist()]
        model.fit(data, labels[family], **fit)
        predictions = model.predict_proba(rows) if family in ("binary", "multiclass") else model.predict(rows)
        common = {
            "framework": "catboost",
            "library_version": version,
            "family": family,
            "case": case,
            "objective": extra["loss_function"],
            "num_feature": NUM_FEATURE,
            "predictions": _floats(predictions),
        }
        path = directory / f"{case}.cbm"
        model.save_model(str(path))
        records.append(_record(path, out, format="cbm", **common))
        # A pickled estimator (framework mode): CatBoost's own state, the .cbm bytes under `__model`.
        path = directory / f"{case}.pkl"
        path.write_bytes(pickle.dumps(model, protocol=4))
        records.append(_record(path, out, format="pickle", **common))
    return records


def _onnx_worker(version: str, out: Path) -> list[dict]:
    import numpy as np
    import onnx
    import onnxruntime
    import sklearn
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression

    assert onnx.__version__ == version, (onnx.__version__, version)
    x, labels, _, probe = _data()
    x = np.nan_to_num(x)
    probe = np.nan_to_num(probe)
    directory = out / "onnx"
    directory.mkdir(parents=True, exist_ok=True)
    records = []
    versions = (
        f"onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}, skl2onnx, sklearn {sklearn.__version__}"
    )

    def run(path: Path) -> list:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        results = session.run(None, {name: probe})
        return [r if isinstance(r, np.ndarray) else [[row[k] for k in sorted(row)] for row in r] for r in results]

    models = {
        "binary-logistic-zipmap": (LogisticRegression(max_iter=200).fit(x, labels["binary"]), {}),
        "multiclass-forest": (
            RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(x, labels["multiclass"]),
            {"zipmap": False},
        ),
        "regression-linear": (LinearRegression().fit(x, labels["regression"]), {}),
    }
    for case, (model, options) in models.items():
        kwargs = {"options": {id(model): options}} if options else {}
        proto = to_onnx(model, x[:1], target_opset={"": 17, "ai.onnx.ml": 3}, **kwargs)
        path = directory / f"{case}.onnx"
        path.write_bytes(proto.SerializeToString())
        outputs = run(path)
        records.append(
            _record(
                path,
                out,
                framework="onnx",
                library_version=versions,
                family=case.split("-")[0],
                case=case,
                format="onnx",
                producer="skl2onnx",
                num_feature=NUM_FEATURE,
                outputs=[_floats(o) for o in outputs],
            )
        )

    # By hand: a logistic model whose weights live in an external data file beside it.
    weights = np.linspace(-1, 1, NUM_FEATURE * 2, dtype=np.float32).reshape(NUM_FEATURE, 2)
    bias = np.array([0.25, -0.25], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "weights"], ["scores"]),
            helper.make_node("Add", ["scores", "bias"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "by_hand",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, NUM_FEATURE])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        [numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")],
    )
    for case, external in (("binary-by-hand", False), ("binary-external-data", True)):
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="by-hand")
        proto.ir_version = 8
        target = directory / case
        if external:
            target.mkdir(exist_ok=True)
            path = target / "model.onnx"
            onnx.save_model(
                proto, str(path), save_as_external_data=True, location="weights.bin", size_threshold=0,
                all_tensors_to_one_file=True,
            )  # fmt: skip
        else:
            path = directory / f"{case}.onnx"
            onnx.save_model(proto, str(path))
        onnx.checker.check_model(str(path), full_check=True)
        records.append(
            _record(
                path,
                out,
                framework="onnx",
                library_version=versions,
                family="binary",
                case=case,
                format="onnx-external-data" if external else "onnx",
                producer="onnx.helper",
                num_feature=NUM_FEATURE,
                outputs=[_floats(o) for o in run(path)],
            )
        )
    return records


def _wrapper_records(model, name: str, directory: Path, out: Path, probe, common: dict, dataframe=None) -> list[dict]:
    """`model` pickled (protocol 4) and dumped with joblib (plain, and compressed for the binary case), with
    what it predicts on the probe and the parameters it keeps (what a user may set to any plain value)."""
    import pickle
    import warnings

    import joblib

    rows = probe if dataframe is None else dataframe(probe)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictions = model.predict(rows)
        probabilities = model.predict_proba(rows) if hasattr(model, "predict_proba") else None
    fields = {
        **common,
        "estimator": type(model).__name__,
        "params": sorted(model.get_params(deep=False)),
        "labels": _floats(predictions) if predictions.dtype.kind in "fiub" else predictions.tolist(),
    }
    if probabilities is not None:
        fields["probabilities"] = _floats(probabilities)
    records = []
    path = directory / f"{name}.pkl"
    path.write_bytes(pickle.dumps(model, protocol=4))
    records.append(_record(path, out, format="sklearn-pickle", **fields))
    path = directory / f"{name}.joblib"
    joblib.dump(model, path)
    records.append(_record(path, out, format="sklearn-joblib", **fields))
    if name.endswith("-binary"):
        path = directory / f"{name}-compressed.joblib"
        joblib.dump(model, path, compress=3)
        records.append(_record(path, out, format="sklearn-joblib-compressed", **fields))
    return records


def _xgboost_wrappers_worker(version: str, out: Path) -> list[dict]:
    """XGBClassifier, XGBRegressor, XGBRanker and XGBRFClassifier as framework mode saves them."""
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    assert xgb.__version__ == version, (xgb.__version__, version)
    x, labels, groups, probe = _data()
    major, minor = (int(p) for p in version.split(".")[:2])
    directory = out / "xgboost" / version
    directory.mkdir(parents=True, exist_ok=True)
    settings = {"n_estimators": ROUNDS, "max_depth": 3, "random_state": 0, "n_jobs": 1}
    if (major, minor) < (2, 0):
        settings["tree_method"] = "exact"
    classifier = dict(settings)
    if (1, 3) <= (major, minor) < (1, 6):
        classifier["use_label_encoder"] = False  # 1.3-1.5 warn otherwise; the label encoder case sets it
    binary, multiclass = labels["binary"].astype(int), labels["multiclass"].astype(int)
    cases = {
        "sklearn-binary": (xgb.XGBClassifier(**classifier), binary, {}),
        "sklearn-multiclass": (xgb.XGBClassifier(**classifier), multiclass, {}),
        "sklearn-regression": (xgb.XGBRegressor(**settings), labels["regression"], {}),
        "sklearn-forest": (xgb.XGBRFClassifier(**{**classifier, "n_estimators": 3}), binary, {}),
    }
    qid = np.repeat(np.arange(len(groups)), groups)
    ranking_fit = {"group": groups} if (major, minor) < (1, 6) else {"qid": qid}
    cases["sklearn-ranking"] = (xgb.XGBRanker(**settings), labels["ranking"].astype(int), ranking_fit)
    # Early stopping: the estimator predicts with its best iteration, not every tree.
    stopping = {"eval_set": [(x[:60], binary[:60])]}
    if (major, minor) < (1, 6):
        # Labels of any kind, encoded by the estimator's own label encoder (removed in 1.6).
        encoded = {**classifier, "use_label_encoder": True} if (major, minor) >= (1, 3) else classifier
        cases["sklearn-binary-labels"] = (xgb.XGBClassifier(**encoded), np.array(["no", "yes"])[binary], {})
        early = xgb.XGBClassifier(**{**classifier, "n_estimators": 40})
        stopping["early_stopping_rounds"] = 2
    else:
        early = xgb.XGBClassifier(**{**classifier, "n_estimators": 40, "early_stopping_rounds": 2})
    cases["sklearn-binary-early-stopping"] = (early, binary, stopping)
    columns = [f"f{i}" for i in range(NUM_FEATURE)]
    frame = None
    if (major, minor) >= (1, 6):
        # Fit on a DataFrame: the estimator keeps the column names (feature_names_in_).
        frame = lambda rows: pd.DataFrame(rows, columns=columns)  # noqa: E731
        cases["sklearn-binary-dataframe"] = (xgb.XGBClassifier(**classifier), binary, {})
    records = []
    for case, (model, label, fit) in cases.items():
        family = case.split("-")[1]
        dataframe = frame if case.endswith("dataframe") else None
        model.fit(x if dataframe is None else dataframe(x), label, verbose=False, **fit)
        common = {
            "framework": "xgboost",
            "library_version": version,
            "family": "ranking"
            if family == "ranking"
            else "regression"
            if family == "regression"
            else "binary"
            if family in ("binary", "forest")
            else family,
            "case": case,
            "objective": model.get_params()["objective"] or model.objective,
            "num_feature": NUM_FEATURE,
        }
        records += _wrapper_records(model, case, directory, out, probe, common, dataframe)
    return records


def _lightgbm_wrappers_worker(version: str, out: Path) -> list[dict]:
    """LGBMClassifier, LGBMRegressor and LGBMRanker as framework mode saves them."""
    import lightgbm as lgb
    import numpy as np
    import pandas as pd

    assert lgb.__version__ == version, (lgb.__version__, version)
    x, labels, groups, probe = _data()
    directory = out / "lightgbm" / version
    directory.mkdir(parents=True, exist_ok=True)
    settings = {"n_estimators": ROUNDS, "num_leaves": 6, "min_child_samples": 5, "random_state": 0, "n_jobs": 1}
    settings["verbose"] = -1
    binary = labels["binary"].astype(int)
    cases = {
        "sklearn-binary": (lgb.LGBMClassifier(**settings), np.array(["no", "yes"])[binary], {}),
        "sklearn-multiclass": (lgb.LGBMClassifier(**settings), labels["multiclass"].astype(int), {}),
        "sklearn-regression": (lgb.LGBMRegressor(**settings), labels["regression"], {}),
        "sklearn-ranking": (lgb.LGBMRanker(**settings), labels["ranking"].astype(int), {"group": groups}),
        "sklearn-binary-early-stopping": (
            lgb.LGBMClassifier(**{**settings, "n_estimators": 40}),
            binary,
            {"eval_set": [(x[:60], binary[:60])], "callbacks": [lgb.early_stopping(2, verbose=False)]},
        ),
        "sklearn-binary-dataframe": (lgb.LGBMClassifier(**settings), binary, {}),
    }
    columns = [f"f{i}" for i in range(NUM_FEATURE)]
    frame = lambda rows: pd.DataFrame(rows, columns=columns)  # noqa: E731
    records = []
    for case, (model, label, fit) in cases.items():
        family = case.split("-")[1]
        dataframe = frame if case.endswith("dataframe") else None
        model.fit(x if dataframe is None else dataframe(x), label, **fit)
        common = {
            "framework": "lightgbm",
            "library_version": version,
            "family": family,
            "case": case,
            "objective": model.objective_ if hasattr(model, "objective_") else model._objective,
            "num_feature": NUM_FEATURE,
        }
        records += _wrapper_records(model, case, directory, out, probe, common, dataframe)
    return records


WORKERS = {
    "xgboost": _xgboost_worker,
    "xgboost-wrappers": _xgboost_wrappers_worker,
    "lightgbm": _lightgbm_worker,
    "lightgbm-wrappers": _lightgbm_wrappers_worker,
    "catboost": _catboost_worker,
    "onnx": _onnx_worker,
}


def worker(kinds: str, version: str, out: Path, records: Path) -> int:
    found = [record for kind in kinds.split("+") for record in WORKERS[kind](version, out)]
    records.write_text(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
