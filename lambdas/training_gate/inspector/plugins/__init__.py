"""Judged plug-ins for XGBoost, LightGBM, CatBoost and ONNX: recognised by content, the bytes validated by the
gate's own parsers (`inspector.native`), then loaded by the framework's reader inside the contained child, and
smoke-tested on the sample input. Importing this package imports no framework."""
