"""The inputs real models need: records with column names (JSON objects, CSV with a header), strings and mixed
types, turned into a DataFrame inside the child where the model was fit on one. Each model here is benign and
must pass: a ColumnTransformer selecting columns by name, a text model, pipelines under
set_output(transform="pandas"), encoders of mixed rows."""

from __future__ import annotations

import io
import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter, ValidationError
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from training_gate.domain.models import CheckStatus, HoldoutConfig
from training_gate.domain.settings import SampleInput
from training_gate.inspector.inspect import InspectConfig, inspect_artifact
from training_gate_cli.artifacts import pack_model_tar_gz

RNG = np.random.default_rng(0)
TABLE = pd.DataFrame(
    {
        "age": RNG.integers(18, 80, 60).astype(float),
        "income": RNG.normal(50_000, 10_000, 60),
        "city": RNG.choice(["Paris", "Lyon", "Nice"], 60),
    }
)
LABELS = (TABLE["age"] > 45).astype(int).to_numpy()
DOCUMENTS = ["good product, works well", "terrible, broke at once", "works as described", "awful support"] * 5
SENTIMENT = np.array([1, 0, 1, 0] * 5)


def column_model():
    by_name = ColumnTransformer([("numbers", StandardScaler(), ["age", "income"]), ("city", OneHotEncoder(), ["city"])])
    return make_pipeline(by_name, LogisticRegression(max_iter=500)).fit(TABLE, LABELS)


def text_model():
    return make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=500)).fit(DOCUMENTS, SENTIMENT)


def pandas_output_model():
    numbers = TABLE[["age", "income"]]
    return (
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        .set_output(transform="pandas")
        .fit(numbers, LABELS)
    )


def mixed_rows_model():
    rows = np.array([[1.5, "red"], [2.5, "blue"], [0.5, "red"], [3.0, "green"]], dtype=object)
    return make_pipeline(OrdinalEncoder(), LogisticRegression(max_iter=500)).fit(rows, [0, 1, 0, 1])


def serialise(model, how: str) -> dict[str, bytes]:
    if how == "pickle-protocol-2":
        return {"model.pkl": pickle.dumps(model, protocol=2)}
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return {"model.joblib": buffer.getvalue()}


def inspect(model, sample=None, how: str = "joblib", holdout: bytes | None = None, **config):
    artifact = pack_model_tar_gz(serialise(model, how))
    settings = InspectConfig(
        sample_input=sample,
        holdout=HoldoutConfig(uri="s3://data/holdout.csv", label_column="label") if holdout is not None else None,
        **config,
    )
    result = inspect_artifact(
        "s3://b/model.tar.gz", lambda: io.BytesIO(artifact), settings, lambda _uri: io.BytesIO(holdout or b"")
    )
    return result, {c.name: c for c in result.checks}


CSV_SAMPLE = {"csv": "city,income,age\nParis,52000,33\nNice,61000.5,71\n"}
RECORDS = [{"income": 48000, "city": "Lyon", "age": 29}, {"city": "Paris", "age": 64, "income": 30500.5}]

BENIGN = {
    "column-transformer-records": (column_model, RECORDS, "2 row(s)"),
    "column-transformer-csv": (column_model, CSV_SAMPLE, "2 row(s)"),
    "column-transformer-rows-in-fit-order": (column_model, [[33, 52000, "Paris"]], "1 row(s)"),
    "text-documents": (text_model, ["works well, good", "broke"], "2 row(s)"),
    "text-records": (text_model, [{"review": "awful, broke"}], "1 row(s)"),
    "pandas-output-derived-sample": (pandas_output_model, None, "derived sample"),
    "pandas-output-records": (pandas_output_model, [{"age": 40, "income": 41000}], "1 row(s)"),
    "mixed-types-rows": (mixed_rows_model, [[2.5, "blue"], [0.5, "red"]], "2 row(s)"),
}


@pytest.mark.parametrize("case", list(BENIGN))
@pytest.mark.parametrize("how", ["joblib", "pickle-protocol-2"])
def test_models_fit_on_dataframes_text_and_mixed_types_pass(case: str, how: str):
    build, sample, seen = BENIGN[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build()
    result, checks = inspect(model, sample, how)
    assert result.verdict == "pass", result.checks
    assert checks["smoke_prediction"].status == CheckStatus.PASS
    assert seen in checks["smoke_prediction"].detail


def test_a_transformer_with_pandas_output_is_smoke_tested_on_its_frame():
    scaler = StandardScaler().set_output(transform="pandas").fit(TABLE[["age", "income"]])
    result, checks = inspect(scaler, RECORDS)
    assert result.verdict == "pass", result.checks
    assert "transform on 2 row(s) (configured sample input) -> 2 x 2, finite" in checks["smoke_prediction"].detail


def test_records_without_a_column_the_model_was_fit_on_fail_naming_it():
    result, checks = inspect(column_model(), [{"age": 30, "income": 1.0}])
    assert result.verdict == "reject"
    assert "lack column(s) city the model was fit on (it has: age, income, city)" in checks["smoke_prediction"].detail


def test_a_holdout_table_with_named_columns_scores_a_model_fit_on_a_dataframe():
    frame = TABLE.assign(label=LABELS).sample(frac=1.0, axis=1, random_state=1)  # columns in another order
    result, checks = inspect(column_model(), RECORDS, holdout=frame.to_csv(index=False).encode())
    assert checks["holdout"].status == CheckStatus.PASS, checks["holdout"].detail
    accuracy = {m.name: m.value for m in result.metrics if m.source == "holdout"}["accuracy"]
    assert accuracy == pytest.approx(float(np.mean(column_model().predict(TABLE) == LABELS)))


def test_a_holdout_of_documents_scores_a_text_model():
    csv = pd.DataFrame({"review": DOCUMENTS, "label": SENTIMENT}).to_csv(index=False).encode()
    result, checks = inspect(text_model(), ["works"], holdout=csv)
    assert checks["holdout"].status == CheckStatus.PASS, checks["holdout"].detail
    assert {m.name: m.value for m in result.metrics if m.source == "holdout"}["accuracy"] == 1.0


@pytest.mark.parametrize(
    "value",
    [[[1.0, "a", True, None]], [{"a": 1, "b": "x"}], ["a document"], {"csv": "a,b\n1,2\n"}],
    ids=["mixed-rows", "records", "documents", "csv"],
)
def test_the_sample_input_model_accepts_every_shape_and_keeps_it_plain_json(value):
    assert TypeAdapter(SampleInput).validate_python(value) == value


@pytest.mark.parametrize(
    "value",
    [[], "a,b\n1,2", [[{"nested": 1}]], {"csv": ""}, {"csv": "a\n1", "extra": 1}],
    ids=["empty", "bare-string", "nested", "empty-csv", "extra-key"],
)
def test_the_sample_input_model_refuses_other_shapes(value):
    with pytest.raises(ValidationError):
        TypeAdapter(SampleInput).validate_python(value)


# -- cells keep the types they were given --------------------------------------------------------------------


def zip_code_model():
    """Fit on a DataFrame whose `zip` column holds strings of digits (postal codes), one-hot encoded."""
    frame = pd.DataFrame({"age": [31, 45, 52, 23], "zip": ["75001", "69002", "75001", "13001"]})
    by_name = ColumnTransformer([("zip", OneHotEncoder(), ["zip"]), ("age", "passthrough", ["age"])])
    return make_pipeline(by_name, LogisticRegression()).fit(frame, [0, 1, 0, 1])


def digit_categories_model():
    """OneHotEncoder fit on the string categories "1" and "2" (what a CSV of codes gives pandas as text)."""
    frame = pd.DataFrame({"grade": ["1", "2", "1", "2"], "x": [0.1, 0.5, 0.2, 0.7]})
    by_name = ColumnTransformer([("grade", OneHotEncoder(), ["grade"]), ("x", "passthrough", ["x"])])
    return make_pipeline(by_name, LogisticRegression()).fit(frame, [0, 1, 0, 1])


@pytest.mark.parametrize(
    ("build", "sample"),
    [
        (zip_code_model, [{"age": 31, "zip": "75001"}]),
        (zip_code_model, {"csv": "age,zip\n31,75001\n"}),
        (zip_code_model, [[31, "75001"]]),
        (digit_categories_model, [{"grade": "2", "x": 0.3}]),
        (digit_categories_model, {"csv": "grade,x\n1,0.3\n2,0.6\n"}),
    ],
    ids=["records", "csv", "rows", "digit-categories-records", "digit-categories-csv"],
)
def test_strings_of_digits_reach_a_model_fit_on_strings_as_strings(build, sample):
    result, checks = inspect(build(), sample)
    assert result.verdict == "pass", result.checks
    assert checks["smoke_prediction"].status == CheckStatus.PASS


def test_a_csv_columns_type_is_the_samples_where_it_says_else_the_models_else_as_pandas_reads_it():
    from training_gate.inspector.inputs import sample_input

    says_nothing = LogisticRegression().fit(pd.DataFrame({"code": [1.0, 2.0], "n": [1.0, 2.0]}), [0, 1])
    frame, _ = sample_input(says_nothing, {"csv": "code,n\n01,7\n"})
    assert frame.to_dict("records") == [{"code": 1.0, "n": 7.0}]  # numbers, as pandas would read them
    frame, _ = sample_input(says_nothing, {"csv": "code,n\n01,7\n", "types": {"code": "string"}})
    assert frame.to_dict("records") == [{"code": "01", "n": 7.0}]
    frame, _ = sample_input(digit_categories_model(), {"csv": "grade,x\n1,0.3\n"})
    assert frame.to_dict("records") == [{"grade": "1", "x": 0.3}]  # the encoder was fit on strings


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        ({"csv": "f0,f1,f2,f3\n5.1\n"}, "row 1 of the CSV sample has 1 cell(s), its header names 4 column(s)"),
        ({"csv": "f0,f1,f2,f3\n"}, "the CSV sample needs a header line and at least one row"),
        ({"csv": "a,a\n1,2\n"}, "the CSV sample's header names column(s) ['a'] twice"),
        ({"csv": "a,\n1,2\n"}, "the CSV sample's header names no column at position(s) [2]"),
        ({"csv": "a,b\n1,x\n", "types": {"b": "number"}}, "row 1 of the CSV sample holds 'x' in number column 'b'"),
        ({"csv": "a,b\n1,2\n", "types": {"c": "string"}}, "types name column(s) ['c'] its header does not have"),
        ([[1.0, 2.0], [3.0]], "the sample's rows must be equally wide"),
        ([{}], "the sample's records name no column"),
    ],
    ids=[
        "ragged-row",
        "header-only",
        "duplicate-column",
        "unnamed-column",
        "not-a-number",
        "unknown-type",
        "rows",
        "empty-records",
    ],
)
def test_a_malformed_sample_is_refused_at_synth_naming_the_problem(sample, message: str):
    from infra.config import ConfigError, load_config, read_context

    with pytest.raises(ConfigError) as refused:
        load_config({**read_context(), "sample_input": sample})
    assert message in str(refused.value)
