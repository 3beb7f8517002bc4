"""The gate's own readers for XGBoost, LightGBM, CatBoost and ONNX models, run before any C loader.

Pure Python: no framework is imported when this package is (the functions that call onnx or
onnxruntime import them inside). Each reader turns bytes into plain data and refuses, with a
`NativeRefusal` naming a `Reason`, anything a C parser would read out of bounds or loop on.
"""
