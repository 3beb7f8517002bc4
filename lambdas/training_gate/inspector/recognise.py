"""What the artifact is, decided once from all its files' content and the job's training image.

While the tar streams, each member's first bytes say whether it is a pickle (PROTO opcode, a joblib or
pickle name) and which module its first global is from, without running anything: pickles of
scikit-learn (and any pickle that names no other framework) are loaded through the restricted loader
as they inflate; every other file is unpacked and recognised afterwards by the plug-ins in
`frameworks`. `decide` then picks the model by a stated precedence:

1. `model_file`, when configured: that file is the model, whatever else is there.
2. A SageMaker built-in algorithm (the training image says which): its format is the model (k-means,
   linear learner and PCA write `model_algo-1`); recognised, not judged. Built-in XGBoost (the
   `sagemaker-xgboost` image) is a framework container here: its `xgboost-model` is judged.
3. The framework the training image names (a SageMaker framework container), when the artifact holds
   a model of it.
4. Otherwise the strongest candidate: a scikit-learn object that predicts, then another framework's
   model file (in the registry's order), then a scikit-learn object that only transforms (or neither)
   when it is the only candidate. Among several scikit-learn predictors, the one named `model.*`.

A scikit-learn object beside another framework's model that only transforms or encodes (a scaler, a
label encoder) is auxiliary: it never decides the framework or the smoke prediction, but it was loaded
through the same allowlist, and a refused one rejects. Every pickle goes through that loader except
the model file of another framework, which its own plug-in reads (XGBoost's and LightGBM's through the same
loader, held to the states those libraries write; CatBoost's as data; never through `__setstate__`), or
describes without loading when the gate does not judge it. A pickle the loader read as it streamed (a
compressed joblib file) whose model is an XGBoost or LightGBM one is judged by that framework's plug-in.
"""

from __future__ import annotations

import io
import pickletools
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from training_gate.domain.models import NO_MODEL_FOUND_DETAIL, NOT_A_SKLEARN_MODEL_DETAIL, CheckStatus
from training_gate.inspector.frameworks import REGISTRY, SCIKIT_LEARN, FileFacts, Framework, PyTorch

PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle", ".skops")
# Modules whose pickles belong to a framework the restricted loader does not admit.
FOREIGN_MODULES = {module: framework for framework in REGISTRY for module in getattr(framework, "modules", ())}
RECOGNISED_FILES_MAX = 20

# SageMaker built-in algorithms by image repository: their model format is theirs (an MXNet NDArray
# file or zip named model_algo-1 for k-means, linear learner and PCA).
BUILT_IN_ALGORITHMS = {
    "kmeans": "k-means",
    "linear-learner": "linear learner",
    "pca": "PCA",
    "factorization-machines": "factorization machines",
    "ntm": "neural topic model",
    "lda": "LDA",
    "randomcutforest": "random cut forest",
    "knn": "k-NN",
    "object2vec": "Object2Vec",
    "ipinsights": "IP Insights",
    "blazingtext": "BlazingText",
    "image-classification": "image classification",
    "object-detection": "object detection",
    "semantic-segmentation": "semantic segmentation",
    "seq2seq": "sequence-to-sequence",
    "forecasting-deepar": "DeepAR",
    "xgboost": "XGBoost (0.72)",
}
# SageMaker framework containers by image repository: a hint, used when the artifact holds a model of it.
FRAMEWORK_IMAGES = {
    "sagemaker-scikit-learn": "scikit-learn",
    "sagemaker-xgboost": "XGBoost",
    "pytorch-training": "PyTorch",
    "sagemaker-pytorch": "PyTorch",
    "tensorflow-training": "TensorFlow",
    "sagemaker-tensorflow-scriptmode": "TensorFlow",
    "mxnet-training": "MXNet",
    "sagemaker-mxnet": "MXNet",
    "huggingface-pytorch-training": "Hugging Face",
    "huggingface-tensorflow-training": "Hugging Face",
}


def image_repository(image: str | None) -> str:
    """`<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>` -> repository (its last part)."""
    if not image:
        return ""
    return image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0].lower()


def pickle_head(name: str, head: bytes) -> tuple[bool, str | None]:
    """(is it a pickle the loader should read, the module its first global names). A pickle of another
    framework (its first global is xgboost's, torch's...) is not for the scikit-learn loader."""
    suffix = PurePosixPath(name).suffix.lower()
    if head.startswith(PyTorch.LEGACY_MAGIC):
        return False, "torch"
    is_pickle = suffix in PICKLE_SUFFIXES or (len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5)
    if not is_pickle or suffix == ".skops":
        return is_pickle, None
    module = _first_global(head)
    foreign = module is not None and module.split(".")[0] in FOREIGN_MODULES
    # The built-in XGBoost container's file: whatever its pickle imports, XGBoost's own reader judges it (and
    # names the global it refuses), never the scikit-learn loader.
    built_in_xgboost = PurePosixPath(name).name == "xgboost-model"
    return not (foreign or built_in_xgboost), module


def _first_global(head: bytes) -> str | None:
    """The module of the first GLOBAL / STACK_GLOBAL, read by pickletools (which runs nothing)."""
    strings: list[str] = []
    try:
        for opcode, argument, _ in pickletools.genops(io.BytesIO(head)):
            if opcode.name in ("GLOBAL", "INST") and isinstance(argument, str):
                return argument.split(" ", 1)[0]
            if opcode.name == "STACK_GLOBAL":
                return strings[-2] if len(strings) >= 2 else None
            if isinstance(argument, str) and opcode.name.endswith("UNICODE"):
                strings.append(argument)
    except Exception:  # noqa: BLE001 - the head is cut mid-opcode, or it is no pickle at all
        return None
    return None


def sklearn_role(outcome: Any) -> str:
    """predictor, transformer, estimator (neither), data (no estimator) or refused (did not load)."""
    if isinstance(outcome, BaseException):
        return "refused"
    from sklearn.base import BaseEstimator

    from training_gate.inspector.smoke import has_method

    model = outcome.model
    if has_method(model, "predict"):
        return "predictor"
    if has_method(model, "transform"):
        return "transformer"
    return "estimator" if isinstance(model, BaseEstimator) else "data"


@dataclass
class Candidate:
    file: str
    framework: Framework
    evidence: str
    role: str = "model"  # model / predictor / transformer / estimator / data / refused / auxiliary

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "framework": self.framework.name, "role": self.role, "evidence": self.evidence}


@dataclass
class Decision:
    status: CheckStatus
    detail: str
    framework: Framework | None = None
    model_file: str | None = None
    rule: str = ""
    candidates: list[Candidate] = field(default_factory=list)
    # Pickles another framework's module names that are not the model: they go through the loader too.
    load_later: list[str] = field(default_factory=list)

    def recognition(self) -> dict[str, Any]:
        models = [c for c in self.candidates if c.file == self.model_file]
        others = [c for c in self.candidates if c.file != self.model_file]
        return {
            "framework": self.framework.name if self.framework else None,
            "judged": bool(self.framework and self.framework.judged and self.status != CheckStatus.FAIL),
            "model_file": self.model_file,
            "rule": self.rule,
            "files": [c.as_dict() for c in (models + others)[:RECOGNISED_FILES_MAX]],
        }


def _owner(outcome: Any) -> Framework | None:
    """The framework whose model a pickle the loader read holds (an XGBoost or LightGBM Booster or estimator,
    known by identity): that plug-in judges it, as it would the same pickle read by itself."""
    return next((f for f in REGISTRY[1:] if f.owns(outcome)), None)


def candidates_of(files: list[FileFacts], loaded: dict[str, Any]) -> list[Candidate]:
    names = frozenset(f.name for f in files)
    found: list[Candidate] = []
    for file in files:
        owner = _owner(loaded[file.name]) if file.name in loaded else None
        if owner is not None:
            what = type(loaded[file.name].model).__name__
            found.append(Candidate(file.name, owner, f"a pickled {what}, loaded through the allowlist"))
            continue
        if file.name in loaded:
            role = sklearn_role(loaded[file.name])
            evidence = "did not load through the allowlist" if role == "refused" else "loaded through the allowlist"
            found.append(Candidate(file.name, SCIKIT_LEARN, evidence, role))
            continue
        for framework in REGISTRY[1:]:
            evidence = framework.recognise(file, names)
            if evidence:
                found.append(Candidate(file.name, framework, evidence))
                break
    return found


def decide(
    files: list[FileFacts], loaded: dict[str, Any], image: str | None = None, model_file: str | None = None
) -> Decision:
    found = candidates_of(files, loaded)
    listing = ", ".join(f.name for f in files) or "nothing"
    foreign_pickles = [f.name for f in files if f.pickle_module and f.name not in loaded]
    repository = image_repository(image)

    def chosen(candidate: Candidate, rule: str) -> Decision:
        if len(found) == 1 and not model_file:
            rule = "the only model file"
        decision = Decision(CheckStatus.PASS, "", candidate.framework, candidate.file, rule, found)
        decision.load_later = [n for n in foreign_pickles if n != candidate.file]
        for other in found:
            if other is not candidate and other.role in ("model", "transformer", "estimator", "data", "predictor"):
                other.role = "auxiliary" if other.framework is SCIKIT_LEARN else other.role
        return _worded(decision, candidate)

    if model_file:
        named = [c for c in found if _matches(c.file, model_file)]
        if len(named) == 1:
            return chosen(named[0], f"model_file {model_file!r}")
        wanted = [f.name for f in files if _matches(f.name, model_file)]
        if not wanted:
            return Decision(
                CheckStatus.FAIL, f"no file matches model_file {model_file!r}; the artifact holds: {listing}"
            )
        if len(wanted) > 1:
            return Decision(CheckStatus.FAIL, f"ambiguous: {len(wanted)} files match model_file: {', '.join(wanted)}")
        return Decision(
            CheckStatus.FAIL,
            f"model_file {wanted[0]} is no model of any framework the gate recognises",
            candidates=found,
        )

    if repository in BUILT_IN_ALGORITHMS:
        algorithm = BUILT_IN_ALGORITHMS[repository]
        own = [c for c in found if c.framework is not SCIKIT_LEARN]
        main = next((c for c in own if PurePosixPath(c.file).name.startswith("model_algo")), own[0] if own else None)
        what = f"{main.file} ({main.framework.name}: {main.evidence})" if main else f"the files: {listing}"
        decision = Decision(
            CheckStatus.SKIPPED,
            f"{NOT_A_SKLEARN_MODEL_DETAIL}: the SageMaker built-in algorithm {algorithm} (training image "
            f"{repository}); recognised {what}; the gate does not judge built-in algorithms",
            main.framework if main else None,
            main.file if main else None,
            f"training image: built-in algorithm {algorithm}",
            found,
            load_later=foreign_pickles,
        )
        for other in found:
            if other.framework is SCIKIT_LEARN and other.role != "refused":
                other.role = "auxiliary"
        return decision

    hinted = FRAMEWORK_IMAGES.get(repository)
    if hinted:
        own = [c for c in found if c.framework.name == hinted and c.role not in ("refused",)]
        if hinted == SCIKIT_LEARN.name:
            own = [c for c in own if c.role == "predictor"] or own
        if own:
            pick = _pick(own)
            if isinstance(pick, Candidate):
                return chosen(pick, f"training image {repository} ({hinted})")
            return pick

    predictors = [c for c in found if c.role == "predictor"]
    if predictors:
        pick = _pick(predictors)
        if isinstance(pick, Candidate):
            return chosen(pick, "a scikit-learn predictor comes first")
        return pick
    for framework in REGISTRY[1:]:
        own = [c for c in found if c.framework is framework]
        if own:
            return chosen(own[0], f"{framework.name}: the first framework of the registry's order the artifact holds")
    sklearn_objects = [c for c in found if c.framework is SCIKIT_LEARN]
    if sklearn_objects:
        pick = _pick(sklearn_objects)
        if isinstance(pick, Candidate):
            return chosen(pick, "the only scikit-learn file")
        return pick
    return Decision(CheckStatus.FAIL, f"{NO_MODEL_FOUND_DETAIL}: the artifact holds: {listing}", candidates=found)


def _matches(name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(PurePosixPath(name).name, pattern)


def _pick(candidates: list[Candidate]) -> Candidate | Decision:
    """One candidate, or a failure: several of one kind and no `model.*` among them."""
    if len(candidates) == 1:
        return candidates[0]
    named = [c for c in candidates if PurePosixPath(c.file).stem == "model"]
    if len(named) == 1:
        return named[0]
    files = ", ".join(sorted(c.file for c in candidates))
    return Decision(
        CheckStatus.FAIL,
        f"ambiguous: {len(candidates)} {candidates[0].framework.name} model files: {files}; set model_file",
        candidates=candidates,
    )


def _worded(decision: Decision, candidate: Candidate) -> Decision:
    others = [f"{c.framework.name} {c.file}" for c in decision.candidates if c is not candidate and c.role == "model"]
    also = f"; also recognised, not judged: {', '.join(others)}" if others else ""
    auxiliary = [c.file for c in decision.candidates if c.role == "auxiliary"]
    aside = f"; auxiliary, loaded through the allowlist: {', '.join(auxiliary)}" if auxiliary else ""
    if candidate.framework.judged:
        decision.detail = f"model file {candidate.file} ({candidate.framework.name}; {decision.rule}){also}{aside}"
        decision.status = CheckStatus.WARN if others else CheckStatus.PASS
    else:
        decision.status = CheckStatus.SKIPPED
        decision.detail = (
            f"{NOT_A_SKLEARN_MODEL_DETAIL}: recognised {candidate.framework.name} in {candidate.file} "
            f"({candidate.evidence}; {decision.rule}){also}{aside}; the gate does not judge "
            f"{candidate.framework.name} models yet"
        )
    return decision
