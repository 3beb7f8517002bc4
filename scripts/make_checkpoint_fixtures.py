#!/usr/bin/env python3
"""Builds the PyTorch, Hugging Face, TensorFlow and Keras checkpoint fixtures.

    python scripts/make_checkpoint_fixtures.py          # rewrites tests/fixtures/checkpoints
    python scripts/make_checkpoint_fixtures.py --list   # the environment's pins

One environment (pinned below, binary wheels only, under `.venv/checkpoint-envs/`, rebuilt when its pins
change) runs this file as a worker. The worker imports nothing of the project but the torch layout
writer (`tests/support/torch_writer.py`, pure Python and numpy): torch itself is far too large to
install, so torch.save's documented zip, legacy and tar layouts and torch.jit.save's archive are written
by hand, record by record as PyTorchStreamWriter and miniz write them. safetensors files come from the
safetensors library, TensorFlow SavedModels and checkpoints from tensorflow-cpu, `.keras` and `.h5`
models from Keras 3 and tf-keras 2. Benign models are trained a few steps so their weights look like a
trained model's; hostile ones are the published kinds (a Lambda layer, a file-reading or Python-function
op), written by the libraries themselves.

The worker also records what each library reads back (TensorFlow's own op list of each graph and its
variables, h5py's datasets, safetensors' tensors) in `manifest.json`, so the tests compare the gate's
readers with the libraries' on the same files.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "fixtures" / "checkpoints"
ENV = REPO / ".venv" / "checkpoint-envs" / "keras-tf"
PINS = (
    "tensorflow-cpu==2.21.0",
    "tf-keras==2.21.0",
    "keras==3.15.1",
    "h5py==3.14.0",
    "safetensors==0.8.0",
    "numpy==2.4.6",
    "ml-dtypes==0.7.0",
)
SEED = 7
README = """# Checkpoint fixtures

Written by `scripts/make_checkpoint_fixtures.py` (its pinned environment: tensorflow-cpu, tf-keras, keras,
h5py, safetensors, numpy); do not edit by hand. Each directory is one artifact, as it would sit in
`/opt/ml/model`; `manifest.json` names its framework, model file, files, expected verdict (and the
sentence that must explain it), and what TensorFlow, h5py and safetensors themselves read from it.

torch is not installed anywhere: its files are written by `tests/support/torch_writer.py` in torch.save's
documented layouts (the zip as PyTorchStreamWriter and miniz write it, the legacy magic-number file, the
pre-0.4 tar, a torch.jit.save archive). Hostile variants of every kind are built by the tests themselves.
"""


def ensure_env() -> Path:
    stamp = ENV / ".pins.sha256"
    digest = hashlib.sha256("\n".join([sys.version, *PINS]).encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return ENV
    shutil.rmtree(ENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(ENV)], check=True)
    pip = [str(ENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX")}
    env["PIP_CONFIG_FILE"] = os.devnull
    subprocess.run([*pip, "--only-binary=:all:", *PINS], check=True, env=env)
    stamp.write_text(digest)
    return ENV


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return Worker(args.out).run()
    if args.list:
        print(" ".join(PINS))
        return 0
    env = ensure_env()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environment.update(PYTHONWARNINGS="ignore", TF_CPP_MIN_LOG_LEVEL="3", PYTHONHASHSEED="0", CUDA_VISIBLE_DEVICES="")
    command = [str(env / "bin" / "python"), str(Path(__file__).resolve()), "--worker", "--out", str(args.out)]
    subprocess.run(command, check=True, cwd=args.out, env=environment)
    print(f"wrote {len(json.loads((args.out / 'manifest.json').read_text()))} fixtures to {args.out}")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Worker: runs in the pinned environment.


def _writer() -> Any:
    spec = importlib.util.spec_from_file_location("torch_writer", REPO / "tests" / "support" / "torch_writer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["torch_writer"] = module
    spec.loader.exec_module(module)
    return module


class Worker:
    def __init__(self, out: Path) -> None:
        import numpy as np

        self.np = np
        self.out = out
        self.rng = np.random.default_rng(SEED)
        self.tw = _writer()
        self.manifest: list[dict[str, Any]] = []

    def add(self, name: str, framework: str, model_file: str, expect: str, **facts: Any) -> None:
        root = self.out / name
        files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        self.manifest.append(
            {"name": name, "framework": framework, "model_file": model_file, "files": files, "expect": expect, **facts}
        )

    def run(self) -> int:
        self.pytorch()
        self.hugging_face()
        self.keras()
        self.tensorflow()
        self.manifest.sort(key=lambda m: m["name"])
        (self.out / "manifest.json").write_text(json.dumps(self.manifest, indent=1, sort_keys=True) + "\n")
        (self.out / "README.md").write_text(README)
        return 0

    # -- PyTorch, by hand --------------------------------------------------------------------------------------

    def weights(self, *shape: int, scale: float = 0.1) -> Any:
        return (self.rng.standard_normal(shape) * scale).astype(self.np.float32)

    def mlp(self) -> dict[str, Any]:
        tw = self.tw
        return {
            "fc1.weight": tw.tensor(self.weights(8, 4)),
            "fc1.bias": tw.tensor(self.weights(8)),
            "fc2.weight": tw.tensor(self.weights(3, 8)),
            "fc2.bias": tw.tensor(self.weights(3)),
        }

    def write(self, name: str, file: str, data: bytes) -> None:
        path = self.out / name / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def pytorch(self) -> None:
        tw, np = self.tw, self.np
        self.write("torch-state-dict", "model.pt", tw.torch_zip(tw.state_dict(self.mlp()), "model"))
        self.add("torch-state-dict", "PyTorch", "model.pt", "pass", tensors=4, parameters=67, dtypes={"float32": 67})

        bn = {
            "conv.weight": tw.tensor(self.weights(4, 3, 3, 3)),
            "bn.weight": tw.tensor(1 + self.weights(4)),
            "bn.bias": tw.tensor(self.weights(4)),
            "bn.running_mean": tw.tensor(self.weights(4)),
            "bn.running_var": tw.tensor(1 + np.abs(self.weights(4))),
            "bn.num_batches_tracked": tw.tensor(np.array(12, dtype=np.int64)),
            "head.weight": tw.tensor(self.weights(2, 4).astype(np.float16)),
            "head.bias": tw.tensor(self.weights(2), dtype="bfloat16"),
        }
        self.write("torch-mixed-dtypes", "model.pth", tw.torch_zip(tw.state_dict(bn), "model"))
        self.add("torch-mixed-dtypes", "PyTorch", "model.pth", "pass", tensors=8)

        base = tw.tensor(self.weights(4, 6))
        shared = tw.Tensor(base.storage, (6, 4), (1, 6))  # a transposed view of the same storage
        sliced = tw.Tensor(base.storage, (2, 6), (6, 1), offset=12)
        views = tw.state_dict({"weight": base, "weight_t": shared, "rows": sliced})
        self.write("torch-views", "model.pt", tw.torch_zip(views, "model"))
        self.add("torch-views", "PyTorch", "model.pt", "pass", tensors=3)

        checkpoint = {
            "epoch": 3,
            "model_state_dict": tw.state_dict(self.mlp()),
            "optimizer_state_dict": {
                "state": {
                    0: {"step": tw.tensor(np.array(3.0, dtype=np.float32)), "exp_avg": tw.tensor(self.weights(8, 4))}
                },
                "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-08, "params": [0, 1, 2, 3]}],
            },
            "loss": 0.25,
        }
        self.write("torch-training-checkpoint", "checkpoint.pt", tw.torch_zip(checkpoint, "checkpoint"))
        self.add("torch-training-checkpoint", "PyTorch", "checkpoint.pt", "pass", tensors=6)

        self.write("torch-legacy", "model.pth", tw.torch_legacy(tw.state_dict(self.mlp())))
        self.add("torch-legacy", "PyTorch", "model.pth", "pass", tensors=4, parameters=67)

        parts = self.mlp()
        keys = {name: tw.TensorKey(name) for name in parts}
        self.write("torch-tar", "model.pt", tw.torch_tar(parts, dict(keys)))
        self.add("torch-tar", "PyTorch", "model.pt", "pass", tensors=4, parameters=67)

        modules = tw.ScriptModule(
            "Net",
            {
                "training": False,
                "fc1": tw.ScriptModule(
                    "torch.nn.modules.linear.Linear",
                    {"weight": parts["fc1.weight"], "bias": parts["fc1.bias"], "training": False},
                ),
            },
        )
        self.write("torchscript", "model.pt", tw.torchscript_zip(modules))
        self.add("torchscript", "PyTorch", "model.pt", "inconclusive", reason="TorchScript archive")

        mask = tw.state_dict(
            {**self.mlp(), "attn.masked_bias": tw.tensor(np.array([0.0, -np.inf, -np.inf], dtype=np.float32))}
        )
        self.write("torch-inf-mask", "model.pt", tw.torch_zip(mask, "model"))
        self.add(
            "torch-inf-mask", "PyTorch", "model.pt", "pass", reason="infinite values in 1 tensor(s): attn.masked_bias"
        )

        diverged = self.mlp()
        bad = self.weights(3, 8)
        bad[1, 2] = np.nan
        diverged["fc2.weight"] = tw.tensor(bad)
        self.write("torch-nan", "model.pt", tw.torch_zip(tw.state_dict(diverged), "model"))
        self.add("torch-nan", "PyTorch", "model.pt", "reject", reason="NaN in 1 tensor(s): fc2.weight (1)")

        net = tw.Obj("__main__.Net", {"training": True, "_parameters": tw.state_dict(self.mlp())})
        self.write("torch-whole-model", "model.pt", tw.torch_zip(net, "model"))
        self.add("torch-whole-model", "PyTorch", "model.pt", "reject", reason="__main__.Net")

    # -- Hugging Face ------------------------------------------------------------------------------------------

    def bert(self) -> tuple[dict[str, Any], dict[str, Any]]:
        np = self.np
        config = {
            "architectures": ["BertForSequenceClassification"],
            "model_type": "bert",
            "hidden_size": 8,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 16,
            "vocab_size": 32,
            "max_position_embeddings": 16,
            "type_vocab_size": 2,
            "id2label": {"0": "negative", "1": "neutral", "2": "positive"},
            "label2id": {"negative": 0, "neutral": 1, "positive": 2},
            "torch_dtype": "float32",
            "transformers_version": "4.57.1",
        }
        w = self.weights
        tensors = {
            "bert.embeddings.word_embeddings.weight": w(32, 8),
            "bert.embeddings.position_embeddings.weight": w(16, 8),
            "bert.embeddings.token_type_embeddings.weight": w(2, 8),
            "bert.embeddings.LayerNorm.weight": 1 + w(8),
            "bert.embeddings.LayerNorm.bias": w(8),
            "bert.pooler.dense.weight": w(8, 8),
            "bert.pooler.dense.bias": w(8),
            "classifier.weight": w(3, 8),
            "classifier.bias": w(3),
        }
        for i in range(2):
            p = f"bert.encoder.layer.{i}."
            for part in ("query", "key", "value"):
                tensors[f"{p}attention.self.{part}.weight"] = w(8, 8)
                tensors[f"{p}attention.self.{part}.bias"] = w(8)
            tensors[f"{p}attention.output.dense.weight"] = w(8, 8)
            tensors[f"{p}attention.output.dense.bias"] = w(8)
            tensors[f"{p}attention.output.LayerNorm.weight"] = 1 + w(8)
            tensors[f"{p}attention.output.LayerNorm.bias"] = w(8)
            tensors[f"{p}intermediate.dense.weight"] = w(16, 8)
            tensors[f"{p}intermediate.dense.bias"] = w(16)
            tensors[f"{p}output.dense.weight"] = w(8, 16)
            tensors[f"{p}output.dense.bias"] = w(8)
            tensors[f"{p}output.LayerNorm.weight"] = 1 + w(8)
            tensors[f"{p}output.LayerNorm.bias"] = w(8)
        return config, {k: np.ascontiguousarray(v) for k, v in tensors.items()}

    def save_safetensors(
        self, name: str, file: str, tensors: dict[str, Any], metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        from safetensors import safe_open
        from safetensors.numpy import save_file

        path = self.out / name / file
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path), metadata=metadata or {"format": "pt"})
        with safe_open(str(path), "np") as handle:
            return {key: list(handle.get_slice(key).get_shape()) for key in handle.keys()}

    def trainer_files(self, name: str) -> None:
        tw, np = self.tw, self.np
        arguments = tw.Obj(
            "transformers.training_args.TrainingArguments",
            {
                "output_dir": "/opt/ml/checkpoints",
                "learning_rate": 5e-05,
                "num_train_epochs": 3.0,
                "per_device_train_batch_size": 8,
                "eval_strategy": tw.EnumValue("transformers.trainer_utils.IntervalStrategy", "epoch"),
                "lr_scheduler_type": tw.EnumValue("transformers.trainer_utils.SchedulerType", "linear"),
                "optim": tw.EnumValue("transformers.training_args.OptimizerNames", "adamw_torch"),
                "report_to": [],
                "seed": 42,
            },
        )
        self.write(name, "training_args.bin", tw.torch_zip(arguments, "training_args"))
        optimizer = {
            "state": {
                0: {
                    "step": tw.tensor(np.array(9.0, dtype=np.float32)),
                    "exp_avg": tw.tensor(self.weights(3, 8)),
                    "exp_avg_sq": tw.tensor(np.abs(self.weights(3, 8))),
                }
            },
            "param_groups": [
                {
                    "lr": 4.5e-05,
                    "betas": (0.9, 0.999),
                    "eps": 1e-08,
                    "weight_decay": 0.0,
                    "amsgrad": False,
                    "foreach": None,
                    "maximize": False,
                    "capturable": False,
                    "differentiable": False,
                    "fused": None,
                    "params": [0],
                }
            ],
        }
        self.write(name, "optimizer.pt", tw.torch_zip(optimizer, "optimizer"))
        scheduler = {
            "base_lrs": [5e-05],
            "last_epoch": 9,
            "_step_count": 10,
            "_get_lr_called_within_step": False,
            "_last_lr": [4.5e-05],
            "lr_lambdas": [None],
        }
        self.write(name, "scheduler.pt", tw.torch_zip(scheduler, "scheduler"))
        state = np.random.RandomState(SEED).get_state()
        rng = {
            "python": (3, (*range(624), 624), None),
            "numpy": state,
            "cpu": tw.tensor(self.rng.integers(0, 255, 64).astype(np.uint8)),
        }
        self.write(name, "rng_state.pth", tw.torch_zip(rng, "rng_state"))
        (self.out / name / "trainer_state.json").write_text(json.dumps({"global_step": 9, "epoch": 3.0}))

    def hugging_face(self) -> None:
        tw, np = self.tw, self.np
        config, tensors = self.bert()
        read = self.save_safetensors("hf-bert", "model.safetensors", tensors)
        (self.out / "hf-bert" / "config.json").write_text(json.dumps(config, indent=2))
        (self.out / "hf-bert" / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
        self.trainer_files("hf-bert")
        self.add("hf-bert", "Hugging Face", "model.safetensors", "pass", tensors=len(tensors), library=read)

        gpt2 = {
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "n_embd": 8,
            "n_layer": 2,
            "n_head": 2,
            "vocab_size": 32,
            "n_positions": 16,
        }
        w = self.weights
        weights = {
            "transformer.wte.weight": w(32, 8),
            "transformer.wpe.weight": w(16, 8),
            "transformer.ln_f.weight": 1 + w(8),
            "transformer.ln_f.bias": w(8),
        }
        for i in range(2):
            p = f"transformer.h.{i}."
            weights.update(
                {
                    f"{p}ln_1.weight": 1 + w(8),
                    f"{p}ln_1.bias": w(8),
                    f"{p}attn.c_attn.weight": w(8, 24),
                    f"{p}attn.c_attn.bias": w(24),
                    f"{p}attn.c_proj.weight": w(8, 8),
                    f"{p}attn.c_proj.bias": w(8),
                    f"{p}ln_2.weight": 1 + w(8),
                    f"{p}ln_2.bias": w(8),
                    f"{p}mlp.c_fc.weight": w(8, 32),
                    f"{p}mlp.c_fc.bias": w(32),
                    f"{p}mlp.c_proj.weight": w(32, 8),
                    f"{p}mlp.c_proj.bias": w(8),
                }
            )
        names = sorted(weights)
        halves = [names[: len(names) // 2], names[len(names) // 2 :]]
        weight_map, total = {}, 0
        for index, half in enumerate(halves, start=1):
            shard = f"model-0000{index}-of-00002.safetensors"
            self.save_safetensors("hf-gpt2-sharded", shard, {k: weights[k] for k in half})
            weight_map.update({k: shard for k in half})
            total += sum(weights[k].nbytes for k in half)
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (self.out / "hf-gpt2-sharded" / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
        (self.out / "hf-gpt2-sharded" / "config.json").write_text(json.dumps(gpt2, indent=2))
        self.add("hf-gpt2-sharded", "Hugging Face", "model.safetensors.index.json", "pass", tensors=len(weights))

        llama = {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": 8,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "vocab_size": 32,
            "torch_dtype": "bfloat16",
        }
        bf = {"model.embed_tokens.weight": w(32, 8), "model.norm.weight": 1 + w(8), "lm_head.weight": w(32, 8)}
        for i in range(2):
            p = f"model.layers.{i}."
            bf.update(
                {
                    f"{p}self_attn.q_proj.weight": w(8, 8),
                    f"{p}self_attn.k_proj.weight": w(4, 8),
                    f"{p}self_attn.v_proj.weight": w(4, 8),
                    f"{p}self_attn.o_proj.weight": w(8, 8),
                    f"{p}mlp.gate_proj.weight": w(16, 8),
                    f"{p}mlp.up_proj.weight": w(16, 8),
                    f"{p}mlp.down_proj.weight": w(8, 16),
                    f"{p}input_layernorm.weight": 1 + w(8),
                    f"{p}post_attention_layernorm.weight": 1 + w(8),
                }
            )
        state = tw.state_dict({k: tw.tensor(v, dtype="bfloat16") for k, v in bf.items()})
        self.write("hf-llama-bin", "pytorch_model.bin", tw.torch_zip(state, "pytorch_model"))
        (self.out / "hf-llama-bin" / "config.json").write_text(json.dumps(llama, indent=2))
        self.add(
            "hf-llama-bin",
            "Hugging Face",
            "pytorch_model.bin",
            "pass",
            tensors=len(bf),
            dtypes={"bfloat16": sum(v.size for v in bf.values())},
        )

        custom = {
            "architectures": ["CustomModel"],
            "model_type": "custom",
            "auto_map": {"AutoConfig": "configuration_custom.CustomConfig", "AutoModel": "modeling_custom.CustomModel"},
            "hidden_size": 8,
        }
        self.save_safetensors("hf-remote-code", "model.safetensors", {"encoder.weight": w(8, 8), "encoder.bias": w(8)})
        (self.out / "hf-remote-code" / "config.json").write_text(json.dumps(custom, indent=2))
        code = 'class CustomModel:\n    """Code from_pretrained(trust_remote_code=True) would import."""\n'
        (self.out / "hf-remote-code" / "modeling_custom.py").write_text(code)
        self.add("hf-remote-code", "Hugging Face", "model.safetensors", "pass", reason="auto_map")

        mismatch = dict(tensors)
        mismatch["classifier.weight"] = w(2, 8)
        self.save_safetensors("hf-bert-wrong-head", "model.safetensors", mismatch)
        (self.out / "hf-bert-wrong-head" / "config.json").write_text(json.dumps(config, indent=2))
        self.add(
            "hf-bert-wrong-head", "Hugging Face", "model.safetensors", "reject", reason="classifier.weight is [2, 8]"
        )
        del np

    # -- Keras ------------------------------------------------------------------------------------------------

    def keras(self) -> None:
        import h5py
        import keras
        import tf_keras

        np = self.np
        keras.utils.set_random_seed(SEED)
        x = self.rng.standard_normal((32, 4)).astype(np.float32)
        y = self.rng.integers(0, 3, 32)

        def h5_facts(path: Path, base: str = "") -> list[list[Any]]:
            found: list[list[Any]] = []
            with h5py.File(path) as handle:
                handle.visititems(
                    lambda n, o: (
                        found.append([base + n, list(o.shape), o.dtype.str]) if isinstance(o, h5py.Dataset) else None
                    )
                )
            return sorted(found)

        def save(model: Any, name: str, file: str) -> Path:
            path = self.out / name / file
            path.parent.mkdir(parents=True, exist_ok=True)
            model.save(path)
            return path

        dense = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(8, activation="relu"),
                keras.layers.Dropout(0.1),
                keras.layers.Dense(3, activation="softmax"),
            ]
        )
        dense.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        dense.fit(x, y, epochs=2, verbose=0)
        save(dense, "keras-sequential", "model.keras")
        self.add("keras-sequential", "Keras", "model.keras", "pass", keras=keras.__version__)
        path = save(dense, "keras-sequential-h5", "model.h5")
        self.add("keras-sequential-h5", "Keras", "model.h5", "pass", library=h5_facts(path))

        inputs = keras.Input((6, 6, 1))
        hidden = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
        hidden = keras.layers.BatchNormalization()(hidden)
        hidden = keras.layers.GlobalAveragePooling2D()(hidden)
        outputs = keras.layers.Dense(2, activation="softmax")(hidden)
        conv = keras.Model(inputs, outputs)
        conv.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        conv.fit(
            self.rng.standard_normal((16, 6, 6, 1)).astype(np.float32), self.rng.integers(0, 2, 16), epochs=2, verbose=0
        )
        save(conv, "keras-functional-conv", "model.keras")
        self.add("keras-functional-conv", "Keras", "model.keras", "pass")

        text = keras.Sequential(
            [
                keras.Input((5,), dtype="int32"),
                keras.layers.Embedding(20, 4),
                keras.layers.LSTM(6),
                keras.layers.Dense(1, activation="sigmoid"),
            ]
        )
        text.compile(optimizer="adam", loss="binary_crossentropy")
        text.fit(self.rng.integers(0, 20, (16, 5)), self.rng.integers(0, 2, 16), epochs=1, verbose=0)
        save(text, "keras-embedding-lstm", "model.keras")
        self.add("keras-embedding-lstm", "Keras", "model.keras", "pass")

        # Lookup layers keep their vocabularies as archive assets; keras.ops in a functional graph are nodes.
        words = keras.layers.StringLookup()
        words.adapt(np.array(["cat", "dog", "cat", "bird"]))
        codes = keras.layers.IntegerLookup()
        codes.adapt(np.array([3, 5, 7, 5]))
        vectorize = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=4)
        vectorize.adapt(np.array(["the cat sat", "a dog ran"]))
        word, code = keras.Input((1,), dtype="string"), keras.Input((1,), dtype="int64")
        sentence = keras.Input((1,), dtype="string")
        features = keras.layers.Concatenate()(
            [
                keras.layers.CategoryEncoding(words.vocabulary_size(), output_mode="one_hot")(words(word)),
                keras.layers.CategoryEncoding(codes.vocabulary_size(), output_mode="one_hot")(codes(code)),
                keras.ops.multiply(keras.ops.cast(vectorize(sentence), "float32"), 0.05),
            ]
        )
        lookups = keras.Model([word, code, sentence], keras.layers.Dense(1)(features))
        save(lookups, "keras-lookups-ops", "model.keras")
        self.add("keras-lookups-ops", "Keras", "model.keras", "pass")

        lam = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2.0), keras.layers.Dense(2)])
        save(lam, "keras-lambda", "model.keras")
        self.add("keras-lambda", "Keras", "model.keras", "reject", reason="Lambda")

        @keras.saving.register_keras_serializable(package="acme")
        class Scale(keras.layers.Layer):
            def call(self, t: Any) -> Any:
                return t * 3.0

        custom = keras.Sequential([keras.Input((4,)), Scale(), keras.layers.Dense(2)])
        save(custom, "keras-custom-class", "model.keras")
        self.add("keras-custom-class", "Keras", "model.keras", "reject", reason="acme>Scale")

        old = tf_keras.Sequential(
            [
                tf_keras.layers.Dense(8, activation="relu", input_shape=(4,)),
                tf_keras.layers.Dense(3, activation="softmax"),
            ]
        )
        old.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        old.fit(x, y, epochs=2, verbose=0)
        path = save(old, "tf-keras-h5", "model.h5")
        self.add("tf-keras-h5", "Keras", "model.h5", "pass", library=h5_facts(path))
        weights = self.out / "tf-keras-weights" / "model.weights.h5"
        weights.parent.mkdir(parents=True)
        old.save_weights(str(weights))
        self.add("tf-keras-weights", "Keras", "model.weights.h5", "pass", library=h5_facts(weights))

        lam2 = tf_keras.Sequential(
            [tf_keras.layers.Lambda(lambda t: t + 1.0, input_shape=(4,)), tf_keras.layers.Dense(2)]
        )
        save(lam2, "tf-keras-lambda-h5", "model.h5")
        self.add("tf-keras-lambda-h5", "Keras", "model.h5", "reject", reason="Lambda")
        # tf.keras turns a TensorFlow function on a tensor into a TFOpLambda layer naming it: arithmetic
        # passes, a file read does not.
        import tensorflow as tf

        lookup = tf_keras.layers.StringLookup()
        lookup.adapt(np.array(["cat", "dog", "bird"]))
        token = tf_keras.Input((1,), dtype="string")
        encoded = tf_keras.layers.CategoryEncoding(lookup.vocabulary_size(), output_mode="one_hot")(lookup(token))
        scaled = tf.math.multiply(encoded, 0.5) + 1.0
        tf_keras.Model(token, tf_keras.layers.Dense(1)(scaled)).save(
            self.out / "tf-keras-lookup-savedmodel", save_format="tf"
        )
        self.add(
            "tf-keras-lookup-savedmodel",
            "TensorFlow",
            "saved_model.pb",
            "pass",
            **self.tf_facts(self.out / "tf-keras-lookup-savedmodel"),
        )
        # tf.io.read_file does not dispatch on Keras tensors, but loading resolves whatever the layer names:
        # the same model with its TFOpLambda renamed, as an attacker would write it.
        numbers = tf_keras.Input((4,))
        doubled = tf_keras.Model(numbers, tf_keras.layers.Dense(1)(tf.math.multiply(numbers, 2.0)))
        path = save(doubled, "tf-keras-read-file-h5", "model.h5")
        with h5py.File(path, "r+") as handle:
            config = handle.attrs["model_config"]
            text = config.decode() if isinstance(config, bytes) else config
            assert '"function": "math.multiply"' in text
            handle.attrs["model_config"] = text.replace('"function": "math.multiply"', '"function": "io.read_file"')
        self.add("tf-keras-read-file-h5", "Keras", "model.h5", "reject", reason="io.read_file")

        old.save(self.out / "tf-keras-savedmodel", save_format="tf")
        self.add(
            "tf-keras-savedmodel",
            "TensorFlow",
            "saved_model.pb",
            "pass",
            **self.tf_facts(self.out / "tf-keras-savedmodel"),
        )

    # -- TensorFlow ----------------------------------------------------------------------------------------------

    def tf_facts(self, directory: Path) -> dict[str, Any]:
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

        saved = saved_model_pb2.SavedModel()
        saved.ParseFromString((directory / "saved_model.pb").read_bytes())
        ops: set[str] = set()
        for graph in saved.meta_graphs:
            ops |= {n.op for n in graph.graph_def.node}
            ops |= {n.op for f in graph.graph_def.library.function for n in f.node_def}
        variables = []
        if (directory / "variables" / "variables.index").exists():
            variables = sorted(
                [n, list(s)]
                for n, s in tf.train.list_variables(str(directory / "variables" / "variables"))
                if n != "_CHECKPOINTABLE_OBJECT_GRAPH"
            )
        return {"ops": sorted(ops), "variables": variables}

    def tensorflow(self) -> None:
        import keras
        import tensorflow as tf

        np = self.np
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3, activation="softmax")]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(
            self.rng.standard_normal((32, 4)).astype(np.float32), self.rng.integers(0, 3, 32), epochs=2, verbose=0
        )
        model.export(str(self.out / "tf-keras3-export"), verbose=False)
        self.add(
            "tf-keras3-export", "TensorFlow", "saved_model.pb", "pass", **self.tf_facts(self.out / "tf-keras3-export")
        )

        class Scorer(tf.Module):
            def __init__(self) -> None:
                self.w = tf.Variable(self.init((4, 3)))
                self.b = tf.Variable(self.init((3,)))

            @staticmethod
            def init(shape: tuple[int, ...]) -> Any:
                return tf.constant(np.random.default_rng(SEED).standard_normal(shape).astype(np.float32) * 0.1)

            @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32)])
            def __call__(self, x: Any) -> Any:
                return tf.nn.softmax(tf.matmul(x, self.w) + self.b)

        tf.saved_model.save(Scorer(), str(self.out / "tf-module"))
        self.add("tf-module", "TensorFlow", "saved_model.pb", "pass", **self.tf_facts(self.out / "tf-module"))

        checkpoint = tf.train.Checkpoint(kernel=tf.Variable(Scorer.init((4, 3))), bias=tf.Variable(Scorer.init((3,))))
        (self.out / "tf-checkpoint").mkdir()
        checkpoint.write(str(self.out / "tf-checkpoint" / "ckpt"))
        self.add("tf-checkpoint", "TensorFlow", "ckpt.index", "pass")

        def read(path: Any) -> Any:
            return tf.io.read_file(path)

        def write(path: Any) -> Any:
            tf.io.write_file(path, "payload")
            return tf.constant(1.0)

        def matching(path: Any) -> Any:
            return tf.io.matching_files(path)

        def python(x: Any) -> Any:
            return tf.py_function(lambda v: v * 2, [x], tf.float32)

        def printing(x: Any) -> Any:
            tf.print(x, output_stream="file:///tmp/leak.txt")
            return x

        hostile = {
            "tf-read-file": (read, tf.string, "ReadFile"),
            "tf-write-file": (write, tf.string, "WriteFile"),
            "tf-matching-files": (matching, tf.string, "MatchingFiles"),
            "tf-py-function": (python, tf.float32, "EagerPyFunc"),
            "tf-print-to-file": (printing, tf.float32, "PrintV2"),
        }
        for name, (body, dtype, op) in hostile.items():

            class Hostile(tf.Module):
                pass

            module = Hostile()
            module.serve = tf.function(body, input_signature=[tf.TensorSpec((), dtype)])
            tf.saved_model.save(module, str(self.out / name), signatures=module.serve.get_concrete_function())
            self.add(name, "TensorFlow", "saved_model.pb", "reject", reason=op, **self.tf_facts(self.out / name))


if __name__ == "__main__":
    sys.exit(main())
