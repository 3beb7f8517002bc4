"""Metric extraction the way SageMaker does it, and the naming rules that let a policy find them.

SageMaker semantics (see tests/fixtures/sagemaker-logs/README.md): each log line (split on "\\n" only)
is searched with each MetricDefinition regex, the first capture group is the value, and the final
value is the last matching line. The job's definitions are the truth: a metric they name is read with
their regex only. Default patterns (source `log-default`) read the common print styles, only for
canonical names none of the job's definitions name. A definition SageMaker accepts never fails the
collection: one the gate cannot apply is a warning naming it, and its metric has no data.
"""

from __future__ import annotations

import re
import re._constants as _sre_constants
import re._parser as _sre_parser
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
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


@dataclass(frozen=True)
class DefinitionCheck:
    """One MetricDefinition as the gate applies it: its canonical name, and why it yields no data
    (`problem`), or its compiled pattern."""

    index: int
    name: str
    regex: str
    canonical: str
    pattern: MetricPattern | None = None
    problem: str | None = None

    def warning(self) -> str | None:
        return f"MetricDefinitions: {self.problem}" if self.problem else None


def check_definitions(definitions: Iterable[Any]) -> list[DefinitionCheck]:
    """Each MetricDefinition with its pattern, or the sentence naming why it records no data.

    SageMaker accepts any Name and Regex of 1 or more characters (API MetricDefinition: pattern `.+`,
    https://docs.aws.amazon.com/sagemaker/latest/dg/API_MetricDefinition.html), so a regex with no
    capture group (the model-parallel examples' `<><><><><><>`), one Python cannot compile or a name
    that canonicalises to nothing is accepted there and simply records no data; so it is here."""
    checks: list[DefinitionCheck] = []
    seen: set[str] = set()
    for index, definition in enumerate(definitions):
        raw_name = definition.get("Name") if isinstance(definition, dict) else None
        raw_regex = definition.get("Regex") if isinstance(definition, dict) else None
        name = raw_name if isinstance(raw_name, str) else ""
        regex = raw_regex if isinstance(raw_regex, str) else ""
        check = DefinitionCheck(index=index, name=name, regex=regex, canonical=canonical_name(name))
        problem = None
        compiled = None
        if not name or not regex:
            problem = f"MetricDefinitions[{index}] needs both Name and Regex"
        elif name in seen:
            problem = f"metric {name!r} is defined twice in MetricDefinitions"
        else:
            try:
                compiled = re.compile(regex)
            except re.error as exc:
                problem = f"metric {name!r}: invalid regex {regex!r}: {exc}; it records no data"
            else:
                if compiled.groups < 1:
                    problem = f"metric {name!r}: regex {regex!r} has no capture group, so it records no data"
                elif not check.canonical:
                    problem = f"metric {name!r}: the name is empty once canonicalised, so no rule can name it"
        if name:
            seen.add(name)
        if problem is None and compiled is not None:
            checks.append(replace(check, pattern=MetricPattern.fixed(name, compiled)))
        else:
            checks.append(replace(check, problem=problem))
    return checks


def compile_usable_definitions(definitions: Iterable[Any]) -> tuple[list[MetricPattern], list[str]]:
    """Compile SageMaker MetricDefinitions: the usable ones, and a sentence naming the metric of
    each one that is not (missing field, invalid regex, no capture group, defined twice)."""
    checks = check_definitions(definitions)
    return [c.pattern for c in checks if c.pattern], [c.problem for c in checks if c.problem]


def compile_definitions(definitions: Iterable[dict[str, str]]) -> list[MetricPattern]:
    """Compile MetricDefinitions strictly (benchmarks, tests): the first unusable one is an error."""
    patterns, problems = compile_usable_definitions(definitions)
    if problems:
        raise MetricDefinitionError(problems[0])
    return patterns


def named_metrics(checks: Iterable[DefinitionCheck]) -> frozenset[str]:
    """Canonical names the job's definitions name, matched or not, usable or not: defaults never
    read these, so a value SageMaker would not record can never appear under them."""
    return frozenset(c.canonical for c in checks if c.canonical)


def unavailable_metrics(checks: Iterable[DefinitionCheck]) -> dict[str, str]:
    """Canonical name -> warning, for each metric a definition names but can never give data."""
    checks = list(checks)
    usable = {c.canonical for c in checks if c.pattern is not None}
    found: dict[str, str] = {}
    for check in checks:
        warning = check.warning()
        if warning and check.canonical and check.canonical not in usable and check.canonical not in found:
            found[check.canonical] = warning
    return found


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
    regex: str | None = None  # the default pattern that gave the last match (defaults only)


@dataclass
class StreamMetrics:
    """Final values of one host's stream, keyed by the name the pattern gave. The job's definitions
    (`values`) and the default patterns (`defaults`) are kept apart: a default must never add a
    match to, or replace the value of, a metric the job defines under the same name."""

    host: str
    values: dict[str, LastMatch] = field(default_factory=dict)
    defaults: dict[str, LastMatch] = field(default_factory=dict)

    def record(self, name: str, raw: str, regex: str | None = None) -> None:
        """Record a default pattern's match (the job's definitions take the fixed-pattern path)."""
        entry = self.defaults.get(name)
        if entry is None:
            entry = self.defaults[name] = LastMatch(raw=raw)
        entry.raw = raw
        entry.matches += 1
        entry.regex = regex

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
                if pattern.name is not None:
                    self._record_fixed(pattern.name, (pattern.regex.search(line) for line in lines))
                    continue
                for line in lines:
                    for name, raw in pattern.names_in(line):
                        self.record(name, raw, pattern.regex.pattern)
                continue
            if pattern.name is None and pattern.line_safe:
                for match in pattern.regex.finditer(text):
                    self.record(match.group("name"), match.group("value"), pattern.regex.pattern)
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
                        self.record(name, raw, pattern.regex.pattern)
                    position = find(literal, end)
                continue
            # Fixed pattern (the hot path): one name, so only the last value and the count matter.
            self._record_fixed(pattern.name, self._candidates(text, literal, pattern.regex.search))

    @staticmethod
    def _candidates(text: str, literal: str, search: Any) -> Iterator[re.Match[str] | None]:
        """The search result of each line that holds `literal`, in order."""
        find, rfind = text.find, text.rfind
        position = find(literal)
        while position != -1:
            start = rfind("\n", 0, position) + 1
            end = find("\n", position)
            if end == -1:
                end = len(text)
            yield search(text[start:end])
            position = find(literal, end)

    def _record_fixed(self, name: str, searches: Iterable[re.Match[str] | None]) -> None:
        last: str | None = None
        hits = 0
        for match in searches:
            if match:
                last = match.group(1) or ""
                hits += 1
        if last is not None:
            entry = self.values.get(name)
            if entry is None:
                self.values[name] = LastMatch(raw=last, matches=hits)
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


DEFAULT_SOURCE = "log-default"


def stream_values(stream: StreamMetrics, named: Collection[str] = frozenset()) -> list[MetricValue]:
    """One host's values: the job's definitions (source `log`), then default-pattern values
    (`log-default`) for canonical names not in `named`, the names the job's definitions name."""
    values = [
        MetricValue.from_raw(
            entry.raw,
            name=canonical_name(name),
            original_name=name,
            source="log",
            host=stream.host,
            matches=entry.matches,
        )
        for name, entry in stream.values.items()
    ]
    for name, entry in stream.defaults.items():
        canonical = canonical_name(name)
        if canonical in named:
            continue
        values.append(
            MetricValue.from_raw(
                entry.raw,
                name=canonical,
                original_name=name,
                source=DEFAULT_SOURCE,
                host=stream.host,
                matches=entry.matches,
            )
        )
    return values


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


def tuning_objective_value(metric_name: str, value: float) -> MetricValue:
    """The objective a tuning job recorded for one of its training jobs
    (FinalHyperParameterTuningJobObjectiveMetric), as a metric of that training job."""
    return MetricValue.from_raw(
        repr(float(value)), name=canonical_name(metric_name), original_name=metric_name, source="tuning_objective"
    )


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


# Which source wins when several report the same metric: SageMaker's own records first (the job's
# FinalMetricDataList, then the objective its tuning job recorded for it). Default patterns keep the
# place the log had before they were told apart from the job's definitions.
SOURCE_PRECEDENCE = (
    "final_metric",
    "tuning_objective",
    "log",
    DEFAULT_SOURCE,
    "cloudwatch_metric",
    "evaluation_file",
    "holdout",
)
_VALIDATION_SPLITS = frozenset({"validation", "valid", "val", "eval"})


def name_rank(original: str) -> int:
    """0 for a validation-prefixed name (validation:, val_, eval_, valid_, "Validation "), 1 for an
    unprefixed one: an unprefixed name may be a training metric (the HF Trainer's `loss`), so it
    never outranks a name that says it is a validation metric. train:/test: names canonicalise apart."""
    match = _SPLIT_PREFIX.match(original.strip().lower())
    return 0 if match and match.group("split") in _VALIDATION_SPLITS else 1


def candidate_key(detail: MetricValue) -> tuple[int, int, tuple[int, str]]:
    """Order of preference among values of one canonical name: name rank, source, host."""
    return name_rank(detail.original_name), SOURCE_PRECEDENCE.index(detail.source), _host_order(detail.host)


def rank_candidates(candidates: Iterable[MetricValue]) -> list[MetricValue]:
    """Best first; among equal keys the first one read stays first (sorted is stable)."""
    return sorted(candidates, key=candidate_key)


def _same_value(a: MetricValue, b: MetricValue) -> bool:
    if a.value is not None and b.value is not None:
        return a.value == b.value
    return a.raw == b.raw


def ambiguous_names(ranked: list[MetricValue]) -> list[str]:
    """The original names that tie with the best of `ranked` (same rank, source and host) but give a
    different value, the best's own name included; empty when the choice is clear."""
    if not ranked:
        return []
    best = ranked[0]
    rank = name_rank(best.original_name)
    same_place = [
        c for c in ranked if c.source == best.source and c.host == best.host and name_rank(c.original_name) == rank
    ]
    if all(_same_value(c, best) for c in same_place):
        return []
    return sorted({c.original_name for c in same_place})


def combine(details: list[MetricValue]) -> MetricsResult:
    """Pick one value per canonical name and say where sources disagree or names collide."""
    warnings: list[str] = []
    disagreements: list[str] = []
    ambiguous: dict[str, list[str]] = {}
    by_name: dict[str, list[MetricValue]] = {}
    for detail in details:
        by_name.setdefault(detail.name, []).append(detail)

    chosen: dict[str, MetricValue] = {}
    for name, candidates in sorted(by_name.items()):
        ranked = rank_candidates(candidates)
        best = ranked[0]
        chosen[name] = best
        # Values of a lower rank are another metric (a training loss beside eval_loss): not compared.
        peers = [c for c in ranked if name_rank(c.original_name) == name_rank(best.original_name)]
        originals = ambiguous_names(ranked)
        if originals:
            ambiguous[name] = originals
            warnings.append(
                f"{name}: ambiguous, {', '.join(originals)} all map to it in {best.source} with different "
                f"values; a rule on {name} is inconclusive unless it names one of them exactly"
            )
        same_metric = [c for c in peers if c.source == best.source and c.original_name == best.original_name]
        host_values = [c.value for c in same_metric if c.value is not None]
        if (
            len({c.host for c in same_metric}) > 1
            and host_values
            and max(host_values) - min(host_values) > (HOST_SPREAD_TOLERANCE)
        ):
            warnings.append(
                f"{name}: hosts disagree ({min(host_values):g} to {max(host_values):g}); "
                f"reporting {best.host or 'the primary host'} ({best.raw})"
            )
        for other in peers[1:]:
            if other.source == best.source:
                continue
            if best.value is None or other.value is None:
                continue
            if abs(best.value - other.value) > CROSS_SOURCE_TOLERANCE:
                warnings.append(f"{name}: {best.source} says {best.raw}, {other.source} says {other.raw}")
                if name not in disagreements:
                    disagreements.append(name)
    return MetricsResult(
        metrics=chosen,
        details=details,
        warnings=list(dict.fromkeys(warnings)),
        disagreements=disagreements,
        ambiguous=ambiguous,
    )


def recombine(previous: MetricsResult, extra: Iterable[MetricValue]) -> MetricsResult:
    """`previous` (what CollectMetrics returned) with more values, such as the inspection's holdout
    scores: chosen again, what only the collection knows kept, and each warning once (combine says
    the same sentence again for the same values)."""
    result = combine([*previous.details, *extra])
    result.warnings = list(dict.fromkeys([*previous.warnings, *result.warnings]))
    result.log_streams = previous.log_streams
    result.unavailable = dict(previous.unavailable)
    return result


def log_patterns(checks: Iterable[DefinitionCheck], use_default_patterns: bool = True) -> list[MetricPattern]:
    """The job's usable definitions, then (unless turned off) the default print styles."""
    own = [c.pattern for c in checks if c.pattern is not None]
    return [*own, *DEFAULT_PATTERNS] if use_default_patterns else own


@dataclass
class LogScan:
    """What a job's log streams gave: each definition as applied and each host's matches."""

    checks: list[DefinitionCheck]
    hosts: dict[str, StreamMetrics]

    @property
    def named(self) -> frozenset[str]:
        return named_metrics(self.checks)

    def values(self) -> list[MetricValue]:
        named = self.named
        return [value for stream in self.hosts.values() for value in stream_values(stream, named)]

    def warnings(self) -> list[str]:
        return [w for c in self.checks if (w := c.warning())]

    def result(self) -> MetricsResult:
        result = combine(self.values())
        result.warnings[:0] = self.warnings()
        result.unavailable = unavailable_metrics(self.checks)
        return result


def scan_streams(
    streams: Iterable[tuple[str, Iterable[str]]], definitions: Iterable[Any], use_default_patterns: bool = True
) -> LogScan:
    """Parse local streams (host, lines) the way CloudWatch streams are parsed; never fails on a
    definition SageMaker accepts."""
    checks = check_definitions(definitions)
    patterns = log_patterns(checks, use_default_patterns)
    hosts: dict[str, StreamMetrics] = {}
    for host, lines in streams:
        stream = hosts.setdefault(host, StreamMetrics(host=host))
        parsed = parse_stream(host, lines, patterns)
        for target, found in ((stream.values, parsed.values), (stream.defaults, parsed.defaults)):
            for name, entry in found.items():
                previous = target.get(name)
                target[name] = entry if previous is None else replace(entry, matches=entry.matches + previous.matches)
    return LogScan(checks=checks, hosts=hosts)


def is_numeric(raw: str) -> bool:
    """True when the capture is a number, finite or not ("nan" is; "(0.2285)" and "n/a" are not)."""
    try:
        float(raw.strip())
    except ValueError:
        return False
    return True


def _why_not(detail: MetricValue, chosen: MetricValue, ambiguous: bool) -> str:
    if name_rank(detail.original_name) != name_rank(chosen.original_name):
        return f"{chosen.original_name} is validation-prefixed and ranks above {detail.original_name}"
    if detail.source != chosen.source:
        return f"{chosen.source} comes before {detail.source}"
    if detail.host != chosen.host:
        return f"{chosen.host} is reported (the primary host {PRIMARY_HOST} first, then by name)"
    if ambiguous:
        return f"ambiguous with {chosen.original_name}={chosen.raw}, which was read first"
    return f"same value as {chosen.original_name}, which was read first"


def fidelity_report(scan: LogScan, result: MetricsResult) -> dict[str, Any]:
    """Per canonical metric: each reading (the job's definition or a default pattern, with its
    regex), every host's match count and final value, which one was chosen and why the others were
    not. Pure; bulky for many hosts, so it belongs in S3 beside the report, not in the state."""
    named = scan.named
    metrics: dict[str, dict[str, Any]] = {}
    readings: dict[tuple[str, str, str], dict[str, Any]] = {}

    def reading(canonical: str, source: str, original: str, definition: str, regex: str | None) -> dict[str, Any]:
        key = (canonical, source, original)
        if key not in readings:
            entry = metrics.setdefault(canonical, {"chosen": None, "readings": []})
            readings[key] = {"original_name": original, "definition": definition, "regex": regex, "source": source}
            readings[key].update(applied=True, hosts={})
            entry["readings"].append(readings[key])
        return readings[key]

    for check in scan.checks:
        if check.pattern is None:
            if check.canonical:
                metrics.setdefault(check.canonical, {"chosen": None, "readings": []})
            continue
        found = reading(check.canonical, "log", check.name, "job", check.regex)
        for host, stream in scan.hosts.items():
            last = stream.values.get(check.name)
            found["hosts"][host] = {"matches": last.matches if last else 0, "raw": last.raw if last else None}
    for host, stream in scan.hosts.items():
        for name, last in stream.defaults.items():
            canonical = canonical_name(name)
            found = reading(canonical, DEFAULT_SOURCE, name, "default", last.regex)
            found["applied"] = canonical not in named
            found["hosts"][host] = {"matches": last.matches, "raw": last.raw}
    for detail in result.details:
        if detail.source not in ("log", DEFAULT_SOURCE):
            found = reading(detail.name, detail.source, detail.original_name, detail.source, None)
            found["hosts"][detail.host or "-"] = {"matches": detail.matches, "raw": detail.raw}

    by_place = {(d.name, d.source, d.original_name, d.host or "-"): d for d in result.details}
    for canonical, entry in metrics.items():
        chosen = result.metrics.get(canonical)
        if chosen is not None:
            entry["chosen"] = {
                "original_name": chosen.original_name,
                "source": chosen.source,
                "host": chosen.host,
                "raw": chosen.raw,
                "value": chosen.value,
            }
        if canonical in result.ambiguous:
            entry["ambiguous"] = result.ambiguous[canonical]
        if canonical in result.unavailable:
            entry["unavailable"] = result.unavailable[canonical]
        for found in entry["readings"]:
            for host, place in found["hosts"].items():
                raw = place["raw"]
                place["value"] = parse_finite(raw) if raw is not None else None
                place["numeric"] = raw is not None and is_numeric(raw)
                detail = by_place.get((canonical, found["source"], found["original_name"], host))
                place["chosen"] = detail is not None and detail == chosen
                if place["chosen"]:
                    place["not_chosen"] = None
                elif found.get("applied") is False:
                    place["not_chosen"] = f"default pattern not applied: the job's MetricDefinitions name {canonical}"
                elif place["matches"] == 0 or detail is None:
                    place["not_chosen"] = "no line matched"
                elif chosen is None:
                    place["not_chosen"] = "no value chosen"
                else:
                    place["not_chosen"] = _why_not(detail, chosen, canonical in result.ambiguous)
    definitions = [
        {
            "name": c.name,
            "canonical": c.canonical,
            "regex": c.regex,
            "definition": "job",
            "usable": c.pattern is not None,
            "problem": c.problem,
        }
        for c in scan.checks
    ]
    return {"definitions": definitions, "metrics": dict(sorted(metrics.items()))}


def metrics_document(scan: LogScan, result: MetricsResult) -> dict[str, Any]:
    """What `training-gate metrics --json` prints: the chosen values (the input `evaluate` reads),
    every value found, the warnings, and the fidelity report."""
    return {
        "metrics": {name: m.value for name, m in result.metrics.items()},
        "details": [
            {k: d.model_dump()[k] for k in ("name", "original_name", "value", "source", "host", "matches")}
            for d in result.details
        ],
        "warnings": result.warnings,
        "fidelity": fidelity_report(scan, result),
    }
