"""PyTorch, Hugging Face, TensorFlow and Keras checkpoints judged by their bytes, never by their code.

`judge_artifact(framework, workdir, model_file, files, scratch)` reads the model file the recogniser
chose with the gate's own readers (nothing imports torch, TensorFlow or Keras, nothing from the artifact
runs) and returns a `Judgement`: what the model is, and whether it is hostile, broken or unusable.
"""

from __future__ import annotations

from training_gate.inspector.checkpoints.artifact import judge_artifact
from training_gate.inspector.checkpoints.judge import INFINITE_VALUES, REMOTE_CODE, TORCHSCRIPT, Judgement

__all__ = ["INFINITE_VALUES", "REMOTE_CODE", "TORCHSCRIPT", "Judgement", "judge_artifact"]
