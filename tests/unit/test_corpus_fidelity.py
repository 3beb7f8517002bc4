"""The shared corpus, run twice: the real logs against SageMaker's expected values, and seeded
variants whose numbers are redrawn so that no two lines carry the same value (a default pattern
that reads another line of the same metric then shows up as a wrong value, not as a lucky match)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from training_gate.domain.metrics import DEFAULT_SOURCE, canonical_name, name_rank, scan_streams

CORPUS = FIXTURES / "sagemaker-logs"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir() and (p / "log.txt").exists())
MULTI_HOST = sorted(p.name for p in CORPUS.iterdir() if (p / "streams").is_dir())
SEEDS = (11, 29)
# A digit run that is a value: not part of a word (f1, python3, 50th; an exponent's "e" is fine) nor
# the `#011` tab escape CloudWatch keeps.
_NUMBER = re.compile(r"(?<![#A-Za-z_\d])\d+(?:\.\d+)?(?![A-DF-Za-df-z_\d])")


def read_lines(path: Path) -> list[str]:
    """Lines as the corpus's compute_expected.py reads them: split on "\\n" only, no final empty line."""
    text = path.read_text(encoding="utf-8")
    text = text.removesuffix("\n")
    return text.split("\n") if text else []


def sagemaker_reference(definitions: list[dict[str, str]], lines: list[str]) -> dict[str, tuple[str | None, int]]:
    """SageMaker's semantics, independent of the gate's scanner: every line, re.search with each
    definition's regex, capture group 1, the last matching line wins. Name -> (last raw, count)."""
    found: dict[str, tuple[str | None, int]] = {}
    for definition in definitions:
        regex = re.compile(definition["Regex"])
        raw, count = None, 0
        for line in lines:
            match = regex.search(line)
            if match:
                raw, count = match.group(1), count + 1
        found[definition["Name"]] = (raw, count)
    return found


def perturb(lines: list[str], seed: int) -> list[str]:
    """Every value redrawn digit by digit (same shape, so every regex still matches the same lines),
    and no value of three digits or more drawn twice."""
    rng = random.Random(seed)
    used: set[str] = set()

    def redraw(match: re.Match[str]) -> str:
        text = match.group()
        for _ in range(50):
            new = "".join(rng.choice("0123456789") if c.isdigit() else c for c in text)
            if sum(c.isdigit() for c in new) < 3 or new not in used:
                break
        used.add(new)
        return new

    return [_NUMBER.sub(redraw, line) for line in lines]


def definitions_of(case: str) -> list[dict[str, str]]:
    return json.loads((CORPUS / case / "metric_definitions.json").read_text())


def assert_gate_reads_like_sagemaker(definitions, lines, reference) -> None:
    # The gate with its default patterns on, as deployed.
    result = scan_streams([("algo-1", lines)], definitions).result()
    log_values = {d.original_name: d for d in result.details if d.source == "log"}
    named = {canonical_name(d["Name"]) for d in definitions}
    for name, (raw, count) in reference.items():
        if count == 0:
            assert name not in log_values, name
            continue
        assert (log_values[name].raw, log_values[name].matches) == (raw or "", count), name
    # No default value under a name the job defines, defined or matched.
    assert not [d.original_name for d in result.details if d.source == DEFAULT_SOURCE and d.name in named]
    # The reported value of each name the job defines is one of the job's own final values, from a
    # definition of the best rank; same-rank definitions that disagree are flagged, never resolved silently.
    for canonical in named:
        matched = [d["Name"] for d in definitions if canonical_name(d["Name"]) == canonical and reference[d["Name"]][1]]
        chosen = result.metrics.get(canonical)
        if not matched:
            assert chosen is None, canonical
            continue
        assert chosen.source == "log" and chosen.original_name in matched, canonical
        assert chosen.raw == (reference[chosen.original_name][0] or ""), canonical
        best_rank = min(name_rank(n) for n in matched)
        assert name_rank(chosen.original_name) == best_rank, canonical
        tied = {reference[n][0] for n in matched if name_rank(n) == best_rank}
        assert (canonical in result.ambiguous) == (len(tied) > 1), canonical


@pytest.mark.parametrize("case", CASES)
def test_reference_reproduces_the_corpus_expectations(case: str):
    # GIVEN the corpus's expected.json WHEN the test's reference reads the same log THEN they agree,
    # so the reference can stand in for SageMaker on the perturbed variants.
    expected = json.loads((CORPUS / case / "expected.json").read_text())
    reference = sagemaker_reference(definitions_of(case), read_lines(CORPUS / case / "log.txt"))
    assert reference == {name: (want["raw"], want["count"]) for name, want in expected.items()}


@pytest.mark.parametrize("case", CASES)
def test_real_logs_give_sagemakers_matches_and_final_values(case: str):
    expected = json.loads((CORPUS / case / "expected.json").read_text())
    reference = {name: (want["raw"], want["count"]) for name, want in expected.items()}
    assert_gate_reads_like_sagemaker(definitions_of(case), read_lines(CORPUS / case / "log.txt"), reference)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", CASES)
def test_perturbed_logs_give_sagemakers_matches_and_final_values(case: str, seed: int):
    definitions = definitions_of(case)
    lines = perturb(read_lines(CORPUS / case / "log.txt"), seed)
    reference = sagemaker_reference(definitions, lines)
    # The variant keeps every match (only the numbers moved).
    original = sagemaker_reference(definitions, read_lines(CORPUS / case / "log.txt"))
    assert {n: c for n, (_, c) in reference.items()} == {n: c for n, (_, c) in original.items()}
    assert_gate_reads_like_sagemaker(definitions, lines, reference)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_hugging_face_variant_really_separates_the_default_from_the_job_regex(seed: int):
    # The HF case prints each eval metric twice: in the {'eval_…': …} dict (the job's regex) and as a
    # summary line `eval_loss: …` (also read by the default pattern). Perturbed, the two differ, so the
    # tests above would catch a default that leaked into a job-defined metric.
    case = "10_hf_trainer_hf_regex_sci_notation"
    lines = perturb(read_lines(CORPUS / case / "log.txt"), seed)
    scan = scan_streams([("algo-1", lines)], definitions_of(case))
    stream = scan.hosts["algo-1"]
    leaked = [n for n in stream.values if n in stream.defaults and stream.values[n].raw != stream.defaults[n].raw]
    assert len(leaked) >= 4
    result = scan.result()
    for name in leaked:
        assert result.metrics[canonical_name(name)].raw != stream.defaults[name].raw


@pytest.mark.parametrize("seed", (None, *SEEDS))
@pytest.mark.parametrize("case", MULTI_HOST)
def test_each_host_stream_reads_like_sagemaker(case: str, seed: int | None):
    definitions = definitions_of(case)
    streams = {}
    for path in sorted((CORPUS / case / "streams").glob("*.txt")):
        lines = read_lines(path)
        streams[path.stem] = lines if seed is None else perturb(lines, seed + len(streams))
    if seed is None:
        per_host = json.loads((CORPUS / case / "expected_per_stream.json").read_text())
        assert {h: sagemaker_reference(definitions, lines) for h, lines in streams.items()} == {
            host: {name: (want["raw"], want["count"]) for name, want in found.items()}
            for host, found in per_host.items()
        }
    result = scan_streams(list(streams.items()), definitions).result()
    for host, lines in streams.items():
        reference = sagemaker_reference(definitions, lines)
        got = {d.original_name: (d.raw, d.matches) for d in result.details if d.host == host and d.source == "log"}
        assert got == {name: (raw, count) for name, (raw, count) in reference.items() if count}
    for definition in definitions:
        chosen = result.metrics[canonical_name(definition["Name"])]
        assert chosen.host == "algo-1"
        assert chosen.raw == sagemaker_reference(definitions, streams["algo-1"])[definition["Name"]][0]
