"""Metric extraction the way SageMaker does it, and the naming rules that let a policy find them.

SageMaker semantics (see tests/fixtures/sagemaker-logs/README.md): each log line (split on "\\n" only)
is searched with each MetricDefinition regex, the first capture group is the value, and the final
value is the last matching line. Default patterns add the common print styles no definition covers.
"""

from __future__ import annotations

import re
import re._constants as _sre_constants
import re._parser as _sre_parser
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from training_gate.domain.models import MetricsResult, MetricValue, parse_finite

# Aliases map the metric part of a name (after any split prefix is removed) to its canonical form.
METRIC_ALIASES: dict[str, str] = {
    "acc": "accuracy",
    "accuracy_score": "accuracy",
    "prec": "precision",
    "precision_score": "precision",
    "rec": "recall",
    "recall_score": "recall",
    "f1_score": "f1",
    "f1score": "f1",
    "f_1": "f1",
    "fscore": "f1",
    "f_score": "f1",
    "roc_auc": "auc",
    "auc_roc": "auc",
    "rocauc": "auc",
}

# Validation/evaluation metrics are what a policy judges, so they get the bare name; training and
# test metrics keep a prefix so that a training accuracy can never stand in for a validation one.
_SPLIT_PREFIX = re.compile(r"^(?P<split>train|training|validation|valid|val|eval|test)(?:[\s:_\-]+)(?P<rest>.+)$")
_SPLIT_CANONICAL = {"train": "train", "training": "train", "test": "test"}

PRIMARY_HOST = "algo-1"
# float32 round trip in FinalMetricDataList plus rounding in printed logs.
CROSS_SOURCE_TOLERANCE = 1e-3
# Hosts of one data-parallel job report slightly different local values; beyond this, say so.
HOST_SPREAD_TOLERANCE = 1e-2


class MetricDefinitionError(ValueError):
    """A MetricDefinition that SageMaker would not be able to apply."""


def canonical_name(original: str) -> str:
    """Canonical metric name: lower case, split prefix folded, aliases resolved."""
    name = original.strip().lower()
    split = None
    match = _SPLIT_PREFIX.match(name)
    if match:
        split, name = match.group("split"), match.group("rest")
    name = re.sub(r"[\s\-]+", "_", name.strip())
    name = METRIC_ALIASES.get(name, name)
    prefix = _SPLIT_CANONICAL.get(split or "")
    return f"{prefix}:{name}" if prefix else name


def required_literal(regex: re.Pattern[str]) -> str | None:
    """The longest literal every match must contain, or None. A line without it cannot match, so
    the scanner skips such lines with `str.find` instead of running the regex on them."""
    if regex.flags & re.IGNORECASE:
        return None
    try:
        parsed = _sre_parser.parse(regex.pattern, regex.flags)
    except re.error:
        return None
    best = ""
    run: list[str] = []

    def flush() -> None:
        nonlocal best
        text = "".join(run)
        if len(text) > len(best):
            best = text
        run.clear()

    def walk(items: Iterable[tuple[Any, Any]]) -> None:
        for op, argument in items:
            if op is _sre_constants.LITERAL:
                run.append(chr(argument))
            elif op is _sre_constants.SUBPATTERN and not argument[1] & re.IGNORECASE:
                walk(argument[-1])  # a top-level group is mandatory: its literals still count
            else:
                flush()

    walk(parsed)
    flush()
    return best or None


@dataclass(frozen=True)
class MetricPattern:
    """A compiled regex. Fixed patterns carry their metric name (MetricDefinitions); dynamic
    ones take the name from the named group `name` (default print styles). `literal` is a string
    every matching line contains (None: every line must be searched)."""

    regex: re.Pattern[str]
    name: str | None = None
    literal: str | None = None
    # True when no match can span a newline (no `\s`, `.`-with-DOTALL or negated class that admits
    # "\n"): such a pattern may run over a whole page at once with the same matches as line by line.
    # Worth it only when the regex starts with a literal, which the regex engine skips to quickly.
    line_safe: bool = False

    @classmethod
    def fixed(cls, name: str, regex: re.Pattern[str]) -> MetricPattern:
        return cls(regex=regex, name=name, literal=required_literal(regex))

    def names_in(self, line: str) -> Iterator[tuple[str, str]]:
        if self.name is not None:
            match = self.regex.search(line)
            if match:
                yield self.name, match.group(1) or ""
            return
        for match in self.regex.finditer(line):
            yield match.group("name"), match.group("value")


def compile_usable_definitions(definitions: Iterable[dict[str, str]]) -> tuple[list[MetricPattern], list[str]]:
    """Compile SageMaker MetricDefinitions: the usable ones, and a sentence naming the metric of
    each one that is not (missing field, invalid regex, no capture group, defined twice)."""
    patterns: list[MetricPattern] = []
    problems: list[str] = []
    for index, definition in enumerate(definitions):
        name = definition.get("Name")
        regex = definition.get("Regex")
        if not name or not regex:
            problems.append(f"MetricDefinitions[{index}] needs both Name and Regex")
            continue
        if any(p.name == name for p in patterns):
            problems.append(f"metric {name!r} is defined twice in MetricDefinitions")
            continue
        try:
            compiled = re.compile(regex)
        except re.error as exc:
            problems.append(f"metric {name!r}: invalid regex {regex!r}: {exc}")
            continue
        if compiled.groups < 1:
            problems.append(f"metric {name!r}: regex {regex!r} has no capture group, so it can never yield a value")
            continue
        patterns.append(MetricPattern.fixed(name, compiled))
    return patterns, problems


def compile_definitions(definitions: Iterable[dict[str, str]]) -> list[MetricPattern]:
    """Compile SageMaker MetricDefinitions; the first unusable one is an error naming its metric."""
    patterns, problems = compile_usable_definitions(definitions)
    if problems:
        raise MetricDefinitionError(problems[0])
    return patterns


_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+|nan|NaN|inf|Infinity|-?inf)"
DEFAULT_PATTERNS: tuple[MetricPattern, ...] = (
    # [INFO] Validation accuracy: 0.905
    MetricPattern(
        re.compile(
            r"\[INFO\][^\S\n]+(?P<name>(?:Training|Train|Validation|Test)[^\S\n]+[A-Za-z][\w\-]*)[^\S\n]*[:=]"
            rf"[^\S\n]*(?P<value>{_NUMBER})"
        ),
        literal="[INFO]",
        line_safe=True,
    ),
    # val_accuracy: 0.9050 (Keras), {'eval_accuracy': 0.91} (HF Trainer), #011validation-auc:0.91 (XGBoost)
    MetricPattern(
        re.compile(
            r"(?<![A-Za-z_])(?P<name>(?:val|eval|validation)[_\-][A-Za-z][\w]*)['\"]?[^\S\n]*[:=][^\S\n]*"
            rf"(?P<value>{_NUMBER})"
        ),
        literal="val",  # in "val_", "eval_" and "validation" alike
        # Line-safe too, but it starts with a lookbehind, which defeats the regex engine's prefix
        # scan: visiting the lines that hold "val" is faster than searching the whole page.
    ),
)


@dataclass
class LastMatch:
    raw: str
    matches: int = 0


@dataclass
class StreamMetrics:
    """Final values of one host's stream, keyed by the name the pattern gave."""

    host: str
    values: dict[str, LastMatch] = field(default_factory=dict)

    def record(self, name: str, raw: str) -> None:
        entry = self.values.get(name)
        if entry is None:
            entry = self.values[name] = LastMatch(raw=raw)
        entry.raw = raw
        entry.matches += 1

    def scan(self, text: str, patterns: Iterable[MetricPattern]) -> None:
        """Apply patterns to a block of "\n"-separated lines that follows what was scanned before.

        Same result as searching every line with every pattern in order: each pattern has its own
        names, so patterns can be applied one after the other, and within a pattern the candidate
        lines are visited in order. Lines without the pattern's literal are skipped at C speed.
        """
        lines: list[str] | None = None
        for pattern in patterns:
            literal = pattern.literal
            if literal is None:
                if lines is None:
                    lines = text.split("\n")
                for line in lines:
                    for name, raw in pattern.names_in(line):
                        self.record(name, raw)
                continue
            if pattern.name is None and pattern.line_safe:
                for match in pattern.regex.finditer(text):
                    self.record(match.group("name"), match.group("value"))
                continue
            find, rfind = text.find, text.rfind
            position = find(literal)
            if pattern.name is None:
                while position != -1:
                    start = rfind("\n", 0, position) + 1
                    end = find("\n", position)
                    if end == -1:
                        end = len(text)
                    for name, raw in pattern.names_in(text[start:end]):
                        self.record(name, raw)
                    position = find(literal, end)
                continue
            # Fixed pattern (the hot path): one name, so only the last value and the count matter.
            search = pattern.regex.search
            last: str | None = None
            hits = 0
            while position != -1:
                start = rfind("\n", 0, position) + 1
                end = find("\n", position)
                if end == -1:
                    end = len(text)
                match = search(text[start:end])
                if match:
                    last = match.group(1) or ""
                    hits += 1
                position = find(literal, end)
            if last is not None:
                entry = self.values.get(pattern.name)
                if entry is None:
                    self.values[pattern.name] = LastMatch(raw=last, matches=hits)
                else:
                    entry.raw = last
                    entry.matches += hits


PAGE_LINES = 10_000
FILTER_PATTERN_MAX = 1024  # CloudWatch Logs' limit on a filterPattern


def build_filter_pattern(patterns: Iterable[MetricPattern]) -> str | None:
    """A CloudWatch Logs filterPattern (`?"lit1" ?"lit2"`) that keeps every event that could match,
    or None when that cannot be exact (a pattern without a literal, or a literal that cannot be
    quoted). Terms are case-sensitive substrings, as are the literals they come from."""
    literals = []
    for pattern in patterns:
        if pattern.literal is None or '"' in pattern.literal or "\\" in pattern.literal:
            return None
        if not pattern.literal.isprintable():
            return None
        literals.append(pattern.literal)
    if not literals:
        return None
    terms = " ".join(f'?"{literal}"' for literal in dict.fromkeys(literals))
    return terms if len(terms) <= FILTER_PATTERN_MAX else None


def parse_stream(host: str, lines: Iterable[str], patterns: Iterable[MetricPattern]) -> StreamMetrics:
    """Apply patterns to one stream, keeping the last match of each name (SageMaker's final value).
    Lines are scanned in pages, so memory stays bounded however long the stream is."""
    patterns = tuple(patterns)
    result = StreamMetrics(host=host)
    page: list[str] = []
    for line in lines:
        page.append(line)
        if len(page) >= PAGE_LINES:
            result.scan("\n".join(page), patterns)
            page.clear()
    if page:
        result.scan("\n".join(page), patterns)
    return result


def _host_order(host: str | None) -> tuple[int, str]:
    return (0 if host == PRIMARY_HOST else 1, host or "")


def stream_values(stream: StreamMetrics, source: str = "log") -> list[MetricValue]:
    return [
        MetricValue.from_raw(
            entry.raw,
            name=canonical_name(name),
            original_name=name,
            source=source,
            host=stream.host,
            matches=entry.matches,
        )
        for name, entry in stream.values.items()
    ]


def final_metric_values(final_metric_data: Iterable[dict[str, object]]) -> list[MetricValue]:
    return [
        MetricValue.from_raw(
            repr(float(item["Value"])),  # type: ignore[arg-type]
            name=canonical_name(str(item["MetricName"])),
            original_name=str(item["MetricName"]),
            source="final_metric",
        )
        for item in final_metric_data
        if "MetricName" in item and "Value" in item
    ]


EVALUATION_FILE_NAMES = ("evaluation.json", "metrics.json")
EVALUATION_FILE_MAX_BYTES = 1 << 20
_NON_FINITE = {"nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def evaluation_file_values(document: Any, location: str) -> list[MetricValue]:
    """Metrics from an evaluation file: flat (`{"accuracy": 0.91}`) or SageMaker Model Monitor /
    Pipelines style (`{"multiclass_classification_metrics": {"accuracy": {"value": 0.91}}}`)."""
    found: list[MetricValue] = []

    def add(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return
        if isinstance(value, str) and parse_finite(value) is None and value.strip().lower() not in _NON_FINITE:
            return  # text such as a model name is not a metric
        found.append(
            MetricValue.from_raw(
                str(value),
                name=canonical_name(name),
                original_name=name,
                source="evaluation_file",
                location=location,
            )
        )

    if not isinstance(document, dict):
        return found
    for key, value in document.items():
        if isinstance(value, dict) and "value" in value:
            add(key, value["value"])
        elif isinstance(value, dict):
            for name, inner in value.items():
                add(name, inner["value"] if isinstance(inner, dict) and "value" in inner else inner)
        else:
            add(key, value)
    return found


# Which source wins when several report the same metric: SageMaker's own record first.
SOURCE_PRECEDENCE = ("final_metric", "log", "cloudwatch_metric", "evaluation_file", "holdout")


def combine(details: list[MetricValue]) -> MetricsResult:
    """Pick one value per canonical name and say where sources disagree or names collide."""
    warnings: list[str] = []
    disagreements: list[str] = []
    by_name: dict[str, list[MetricValue]] = {}
    for detail in details:
        by_name.setdefault(detail.name, []).append(detail)

    chosen: dict[str, MetricValue] = {}
    for name, candidates in sorted(by_name.items()):
        ranked = sorted(candidates, key=lambda d: (SOURCE_PRECEDENCE.index(d.source), _host_order(d.host)))
        best = ranked[0]
        chosen[name] = best
        same_place = [c for c in candidates if c.source == best.source and c.host == best.host]
        originals = sorted({c.original_name for c in same_place})
        if len({c.raw for c in same_place}) > 1:
            warnings.append(
                f"{name}: ambiguous, {', '.join(originals)} all map to it in {best.source} "
                f"with different values; using {best.original_name}={best.raw}"
            )
        host_values = [c.value for c in candidates if c.source == best.source and c.value is not None]
        hosts = {c.host for c in candidates if c.source == best.source}
        if len(hosts) > 1 and host_values and max(host_values) - min(host_values) > HOST_SPREAD_TOLERANCE:
            warnings.append(
                f"{name}: hosts disagree ({min(host_values):g} to {max(host_values):g}); "
                f"reporting {best.host or 'the primary host'} ({best.raw})"
            )
        for other in ranked[1:]:
            if other.source == best.source:
                continue
            if best.value is None or other.value is None:
                continue
            if abs(best.value - other.value) > CROSS_SOURCE_TOLERANCE:
                warnings.append(f"{name}: {best.source} says {best.raw}, {other.source} says {other.raw}")
                if name not in disagreements:
                    disagreements.append(name)
    return MetricsResult(metrics=chosen, details=details, warnings=warnings, disagreements=disagreements)
