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
describes without loading when the gate does not judge it. A scikit-learn pickle holding another
framework's estimator the loader does not admit (a pipeline ending in a CatBoost estimator) is that
framework's, and not judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from training_gate.domain.models import NO_MODEL_FOUND_DETAIL, NOT_A_SKLEARN_MODEL_DETAIL, CheckStatus
from training_gate.inspector import pickles
from training_gate.inspector.frameworks import REGISTRY, SCIKIT_LEARN, FileFacts, Framework

# Names serving code gives pickles: a file so named that no framework recognises is read by the loader,
# which says why it is no model.
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
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


@dataclass(frozen=True)
class Content:
    """What a file's bytes are, as far as pickles go (see `pickles`), decided from its head and size.

    kind: "pickle" (raw bytes an unpickler would act on), "skops" (a skops zip, read by the loader),
    "zip", "tar" (torch's oldest format is one), "compressed" (a joblib compressor's magic), "npy" (a .npy
    file: its dtype may hold objects), "ambiguous" (one of those, and a pickle to a reader that reads the
    raw bytes), "undecided" (the head does not decide), or "other" (proven to hold no pickle)."""

    kind: str
    module: str | None = None  # the first global a pickle names
    detail: str = ""
    compressor: str | None = None

    @property
    def foreign(self) -> bool:
        """A pickle another framework's module opens: that framework's plug-in reads it, not the loader."""
        return self.module is not None and self.module.split(".")[0] in FOREIGN_MODULES


def classify(name: str, head: bytes, size: int, contained: bool = False) -> Content:
    """What a file is, by content; its name counts only for skops (a zip the loader reads as one).
    `contained`: an entry of a zip or tar, which torch.load unpickles with a persistent_load."""
    raw = pickles.read_head(head, size, persistent=contained)
    if head.startswith(pickles.TORCH_LEGACY_MAGIC):
        return Content("pickle", "torch", "the legacy torch.save format (a sequence of pickles)")
    container = _container_kind(name, head, size)
    if container is not None:
        kind, detail, compressor = container
        if raw.verdict != pickles.NOT_PICKLE:
            # A reader of the raw bytes (pickle.load, torch.load of an entry) and the format's own reader
            # would read two different things: the gate vouches for neither.
            return Content("ambiguous", detail=f"{detail}, and to an unpickler {raw.reason}")
        return Content(kind, detail=detail, compressor=compressor)
    if raw.verdict == pickles.PICKLE:
        return Content("pickle", raw.module, raw.reason)
    return Content("undecided" if raw.verdict == pickles.UNDECIDED else "other", detail=raw.reason)


def _container_kind(name: str, head: bytes, size: int) -> tuple[str, str, str | None] | None:
    if head.startswith(pickles.ZIP_MAGIC):
        if PurePosixPath(name).suffix.lower() == ".skops":
            return "skops", "a skops zip", None
        return "zip", "a zip", None
    if head.startswith(pickles.NPY_MAGIC):
        return "npy", "a .npy array", None
    compressor = pickles.compressor_of(head)
    if compressor is not None:
        return "compressed", f"{compressor}-compressed", compressor
    if pickles.is_tar(head):
        return "tar", "a tar", None
    return None


# Another framework's estimators with scikit-learn's API, by the exact name pickle gives each.
SKLEARN_API_CLASSES = {name: framework for framework in REGISTRY for name in framework.sklearn_api}


def framework_of_refusal(outcome: Any) -> tuple[Framework, str] | None:
    """The framework whose estimator a refused pickle holds: the loader refused exactly one of the classes
    a registry framework lists as its scikit-learn API (XGBClassifier...). Any other refusal, another class
    of the same package included, stays a refusal."""
    from training_gate.inspector.loader import RefusedGlobal

    if not isinstance(outcome, RefusedGlobal):
        return None
    framework = SKLEARN_API_CLASSES.get(outcome.name)
    return (framework, outcome.name) if framework is not None else None


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
    # A pickle the scikit-learn loader opened and that holds this framework's estimator (a Pipeline ending in
    # an XGBClassifier): recognised as the framework's, and not judged while the gate does not read them.
    wrapped: bool = False

    @property
    def judged(self) -> bool:
        return self.framework.judged and not self.wrapped

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
    judged: bool = False

    def recognition(self) -> dict[str, Any]:
        models = [c for c in self.candidates if c.file == self.model_file]
        others = [c for c in self.candidates if c.file != self.model_file]
        return {
            "framework": self.framework.name if self.framework else None,
            "judged": self.judged and self.status != CheckStatus.FAIL,
            "model_file": self.model_file,
            "rule": self.rule,
            "files": [c.as_dict() for c in (models + others)[:RECOGNISED_FILES_MAX]],
        }


def candidates_of(files: list[FileFacts], loaded: dict[str, Any]) -> list[Candidate]:
    names = frozenset(f.name for f in files)
    found: list[Candidate] = []
    for file in files:
        if file.name in loaded:
            holding = framework_of_refusal(loaded[file.name])
            if holding is not None:
                framework, name = holding
                opened = f"a pickle of {file.pickle_module}" if file.pickle_module else "a pickle"
                found.append(Candidate(file.name, framework, f"{opened} holding {name}", wrapped=True))
                continue
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
    if not files:
        return Decision(
            CheckStatus.FAIL,
            f"{NO_MODEL_FOUND_DETAIL}: the artifact holds: nothing (the training job saved no files to its model "
            "directory)",
            candidates=found,
        )
    built_in = [f.name for f in files if PurePosixPath(f.name).name.startswith("model_algo-")]
    aside = (
        f" ({', '.join(built_in)}: the name SageMaker's built-in algorithms give their model, in a format the gate "
        "does not recognise by its bytes; the job's training image names the algorithm)"
        if built_in
        else ""
    )
    return Decision(
        CheckStatus.FAIL, f"{NO_MODEL_FOUND_DETAIL}: the artifact holds: {listing}{aside}", candidates=found
    )


def _matches(name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(PurePosixPath(name).name, pattern)


def _pick(candidates: list[Candidate]) -> Candidate | Decision:
    """One candidate, or a failure: several of one kind and no `model.*` among them."""
    if len(candidates) == 1:
        return candidates[0]
    named = [c for c in candidates if PurePosixPath(c.file).name.split(".")[0] == "model"]
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
    decision.judged = candidate.judged
    if candidate.judged:
        decision.detail = f"model file {candidate.file} ({candidate.framework.name}; {decision.rule}){also}{aside}"
        decision.status = CheckStatus.WARN if others else CheckStatus.PASS
    else:
        decision.status = CheckStatus.SKIPPED
        what = (
            f"{candidate.framework.name} estimators inside scikit-learn pickles"
            if candidate.wrapped
            else f"{candidate.framework.name} models"
        )
        decision.detail = (
            f"{NOT_A_SKLEARN_MODEL_DETAIL}: recognised {candidate.framework.name} in {candidate.file} "
            f"({candidate.evidence}; {decision.rule}){also}{aside}; the gate does not judge {what} yet"
        )
    return decision
