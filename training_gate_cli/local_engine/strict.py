"""AWS rules moto does not enforce: refuse, before moto sees it, what AWS would refuse.

moto accepts requests AWS refuses (a 300-character CustomerMetadataProperties value, Tags next to
ModelPackageGroupName, a 101-character SNS subject...), so a gate tested only locally can fail on
its first real run. This module checks every request against botocore's own service model (the
constraints AWS publishes: required members, types, lengths, sizes, ranges, patterns, enums) and
against the documented limits the model does not carry, each a small function citing its page.

Each rule has its canary in tests/engine/test_strict_rules.py.

AWS validates patterns with Java's java.util.regex, so a pattern from the model is translated
before the `regex` package compiles it (see `java_pattern`): the handful of Java-only constructs
are rewritten, and patterns that cannot be translated are listed in SKIPPED_PATTERNS with a reason.
"""

from __future__ import annotations

import contextlib
import decimal
import functools
import json
import math
import threading
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import botocore.client
import botocore.session
import regex
from botocore.exceptions import UnknownServiceError
from botocore.model import OperationModel, ServiceModel, Shape

__all__ = [
    "DYNAMODB_ITEM_MAX",
    "EVENTBRIDGE_ENTRIES_BYTES_MAX",
    "EVENTBRIDGE_ENTRIES_MAX",
    "HISTORY_EVENTS_MAX",
    "LAMBDA_ASYNC_PAYLOAD_MAX",
    "LAMBDA_RESPONSE_MAX",
    "LAMBDA_SYNC_PAYLOAD_MAX",
    "SKIPPED_PATTERNS",
    "SNS_MESSAGE_MAX",
    "SNS_SUBJECT_MAX",
    "STATE_PAYLOAD_MAX",
    "UntranslatablePattern",
    "Violation",
    "aws_sdk_error_name",
    "check_lambda_response",
    "check_state_payload",
    "clear_violations",
    "compiled_pattern",
    "dynamodb_item_size",
    "eventbridge_entry_size",
    "java_pattern",
    "strict_requests",
    "validate_request",
    "validate_semantics",
    "validator_stats",
    "violations",
]

# -- limits that botocore's model does not carry ------------------------------------------------

# https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html (Quotas related to state
# machine executions): "Maximum input or output size for a task, state, or execution: 256 KiB of data
# as a UTF-8 encoded string"; "Maximum execution history size: 25,000 events".
STATE_PAYLOAD_MAX = 262_144
HISTORY_EVENTS_MAX = 25_000
# https://docs.aws.amazon.com/sns/latest/api/API_Publish.html. SNS_MESSAGE_MAX is a topic's default
# MaximumMessageSize; a topic can raise it to 1 MiB, which a stateless check cannot see.
SNS_SUBJECT_MAX = 100
SNS_MESSAGE_MAX = 262_144
# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html: "the total entry size
# must be less than 1MB" (256 KB until January 2026; botocore's documentation carries the new limit).
EVENTBRIDGE_ENTRIES_BYTES_MAX = 1_048_576
EVENTBRIDGE_ENTRIES_MAX = 10
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html ("Item size"): 400 KB,
# and DynamoDB counts 1 KB as 1,024 bytes.
DYNAMODB_ITEM_MAX = 400 * 1024
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html and API_Invoke.html:
# "For synchronous invocations, the maximum payload size is 6 MB. For asynchronous invocations, the
# maximum payload size is 1 MB." Lambda's own refusal names the byte counts: a request "must be
# smaller than 6291456 bytes"; a response over "6291556 bytes" becomes Function.ResponseSizeTooLarge.
LAMBDA_SYNC_PAYLOAD_MAX = 6_291_456
LAMBDA_ASYNC_PAYLOAD_MAX = 1_048_576
LAMBDA_RESPONSE_MAX = 6_291_556


# -- Java regular expressions -----------------------------------------------------------------


def _ranges(*spans: tuple[int, int] | int) -> tuple[tuple[int, int], ...]:
    return tuple(span if isinstance(span, tuple) else (span, span) for span in spans)


# Java's predefined and POSIX classes are ASCII-only (java.util.regex.Pattern without
# UNICODE_CHARACTER_CLASS); the `regex` package reads \w, \d, \s and \p{Alnum} as Unicode.
_SPACE = _ranges((0x09, 0x0D), 0x20)
_WORD = _ranges((0x30, 0x39), (0x41, 0x5A), 0x5F, (0x61, 0x7A))
_ALPHA = _ranges((0x41, 0x5A), (0x61, 0x7A))
_DIGIT = _ranges((0x30, 0x39))
_PUNCT = _ranges((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E))
_JAVA_ESCAPES = {
    "d": _DIGIT,
    "w": _WORD,
    "s": _SPACE,
    # Java 8 and later: \v is vertical whitespace and \h horizontal whitespace, not a single character.
    "v": _ranges((0x0A, 0x0D), 0x85, (0x2028, 0x2029)),
    "h": _ranges(0x09, 0x20, 0xA0, 0x1680, 0x180E, (0x2000, 0x200A), 0x202F, 0x205F, 0x3000),
}
_JAVA_POSIX = {
    "Lower": _ranges((0x61, 0x7A)),
    "Upper": _ranges((0x41, 0x5A)),
    "ASCII": _ranges((0x00, 0x7F)),
    "Alpha": _ALPHA,
    "Digit": _DIGIT,
    "Alnum": _ranges((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "Punct": _PUNCT,
    "Graph": _ranges((0x21, 0x7E)),
    "Print": _ranges((0x20, 0x7E)),
    "Blank": _ranges(0x09, 0x20),
    "Cntrl": _ranges((0x00, 0x1F), 0x7F),
    "XDigit": _ranges((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
    "Space": _SPACE,
    # Java-only names: \p{all} is any character.
    "all": _ranges((0x00, 0x10FFFF)),
}
# Java-only names spelled with Unicode categories the `regex` package knows (Character.isLetterOrDigit).
_JAVA_CATEGORY_UNIONS = {"LD": r"\p{L}\p{Nd}"}
# Java's `.` stops at every line terminator, Python's only at \n.
_JAVA_DOT = r"[^\n\r\x85\u2028\u2029]"
_DOTALL = regex.compile(r"\(\?[a-zA-Z]*s[a-zA-Z-]*[:)]")

# Patterns in botocore's models that the translation cannot carry into the `regex` package: the
# validator does not check them (the rest of the member's constraints still apply).
SKIPPED_PATTERNS: dict[str, str] = {
    r"^arn:\S+:rbin:[a-z\-0-9]{0,63}:[0-9]{12}:rule/[0-9a-zA-Z]{11}{0,1011}$": (
        "rbin RuleArn: a quantifier stacked on a quantifier ({11}{0,1011}), which Java applies to the "
        "quantified atom and `regex` refuses; rewriting it needs an atom parser for one pattern of a "
        "service the gate does not call"
    ),
}


def _code_point(value: int) -> str:
    if value < 0x100:
        return f"\\x{value:02x}"
    if value < 0x10000:
        return f"\\u{value:04x}"
    return f"\\U{value:08x}"


def _set_body(spans: tuple[tuple[int, int], ...], negate: bool) -> str:
    if negate:
        complement, start = [], 0
        for low, high in spans:
            if low > start:
                complement.append((start, low - 1))
            start = high + 1
        if start <= 0x10FFFF:
            complement.append((start, 0x10FFFF))
        spans = tuple(complement)
    return "".join(
        _code_point(low) if low == high else f"{_code_point(low)}-{_code_point(high)}" for low, high in spans
    )


class UntranslatablePattern(ValueError):
    """A Java pattern uses a construct `java_pattern` does not carry over."""


def java_pattern(pattern: str) -> tuple[str, int]:
    """(`regex` source, flags) matching what java.util.regex matches for `pattern`.

    Translations, each because Java and `regex` read the construct differently:
    - \\d \\w \\s (and \\D \\W \\S) are ASCII in Java: spelled out as ASCII sets.
    - \\v and \\h are Java 8 whitespace classes (\\v is one character in `regex`): spelled out.
    - POSIX classes \\p{Alnum}, \\p{Punct}, \\p{Print}... are ASCII in Java: spelled out; \\p{all} and
      \\p{LD} are Java-only names.
    - \\x{h..h} is Java's code point escape: rewritten as \\U.
    - an escaped surrogate pair (\\uD800\\uDC00) is one supplementary code point in Java: joined.
    - `.` stops at \\r, \\u0085, \\u2028 and \\u2029 as well as \\n in Java (unless (?s)).
    - a class nested in a class, or && inside one, is a union or intersection in Java and a literal in
      `regex`'s default version: such patterns compile with regex.V1, which reads them as Java does.
    Possessive quantifiers, lookbehind, \\p{L}/\\p{N}/\\p{IsAlphabetic}, \\A, \\z and quantified
    anchors (`${1,128}`) mean the same in both and are left alone.
    """
    out: list[str] = []
    depth = 0
    version1 = False
    dotall = bool(_DOTALL.search(pattern))
    index = 0
    length = len(pattern)
    while index < length:
        char = pattern[index]
        if char == "\\" and index + 1 < length:
            token, index = _java_escape(pattern, index, depth > 0)
            out.append(token)
            continue
        if char == "[":
            if depth > 0:
                version1 = True
            depth += 1
            out.append(char)
            index += 1
            if index < length and pattern[index] == "^":
                out.append("^")
                index += 1
            continue
        if char == "]" and depth > 0:
            depth -= 1
        elif char == "&" and depth > 0 and pattern.startswith("&&", index):
            version1 = True
            out.append("&&")
            index += 2
            continue
        elif char == "." and depth == 0 and not dotall:
            out.append(_JAVA_DOT)
            index += 1
            continue
        out.append(char)
        index += 1
    translated = "".join(out)
    if version1 and any(op in translated for op in ("--", "||", "~~")):
        # regex.V1 would read these as set operators, which Java does not have.
        raise UntranslatablePattern(f"set operator in a pattern that needs regex.V1: {pattern}")
    return translated, regex.V1 if version1 else regex.V0


def _java_escape(pattern: str, index: int, in_class: bool) -> tuple[str, int]:
    """The translation of the escape starting at pattern[index] (a backslash), and the next index."""
    letter = pattern[index + 1]
    if letter.lower() in _JAVA_ESCAPES:
        body = _set_body(_JAVA_ESCAPES[letter.lower()], negate=letter.isupper())
        return (body if in_class else f"[{body}]"), index + 2
    if letter in "pP" and pattern.startswith("{", index + 2):
        end = pattern.find("}", index + 3)
        if end < 0:
            raise UntranslatablePattern(f"unterminated \\{letter}{{ in {pattern}")
        name = pattern[index + 3 : end]
        if name in _JAVA_POSIX:
            body = _set_body(_JAVA_POSIX[name], negate=letter == "P")
            return (body if in_class else f"[{body}]"), end + 1
        if name in _JAVA_CATEGORY_UNIONS:
            body = _JAVA_CATEGORY_UNIONS[name]
            if letter == "P":
                if in_class:
                    raise UntranslatablePattern(f"\\P{{{name}}} inside a class in {pattern}")
                return f"[^{body}]", end + 1
            return (body if in_class else f"[{body}]"), end + 1
        return pattern[index : end + 1], end + 1
    if letter == "x" and pattern.startswith("{", index + 2):
        end = pattern.find("}", index + 3)
        return _code_point(int(pattern[index + 3 : end], 16)), end + 1
    if letter == "u" and index + 6 <= len(pattern):
        high = int(pattern[index + 2 : index + 6], 16)
        low_escape = pattern[index + 6 : index + 12]
        if 0xD800 <= high <= 0xDBFF and low_escape[:2] == "\\u" and len(low_escape) == 6:
            low = int(low_escape[2:], 16)
            if 0xDC00 <= low <= 0xDFFF:
                return _code_point(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)), index + 12
        return pattern[index : index + 6], index + 6
    return pattern[index : index + 2], index + 2


_stats_lock = threading.Lock()
_stats = {"model_loads": 0, "pattern_compiles": 0}


def _count(name: str) -> None:
    with _stats_lock:
        _stats[name] += 1


def validator_stats() -> dict[str, int]:
    """How often service models were loaded and patterns compiled (each is cached after the first time)."""
    with _stats_lock:
        return dict(_stats)


@functools.cache
def compiled_pattern(pattern: str) -> regex.Pattern[str] | None:
    """The compiled translation of a model pattern; None for a pattern in SKIPPED_PATTERNS."""
    if pattern in SKIPPED_PATTERNS:
        return None
    _count("pattern_compiles")
    source, flags = java_pattern(pattern)
    return regex.compile(source, flags)


# -- botocore's service models -----------------------------------------------------------------

_session_lock = threading.Lock()
_session: botocore.session.Session | None = None
_models: dict[str, ServiceModel] = {}


def _service_model(service: str) -> ServiceModel:
    global _session
    model = _models.get(service)
    if model is not None:
        return model
    with _session_lock:
        if service not in _models:
            if _session is None:
                _session = botocore.session.get_session()
            _count("model_loads")
            _models[service] = _session.get_service_model(service)
        return _models[service]


@functools.cache
def _operation_model(service: str, operation: str) -> OperationModel:
    return _service_model(service).operation_model(operation)


# -- problems ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    path: str
    message: str
    # botocore's own ParamValidator refuses these before a request leaves the client.
    client_side: bool = False
    # The AWS error code this problem is refused with, when it is not the service's usual one.
    code: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _length(value: str) -> int:
    # AWS counts string lengths as Java does: UTF-16 code units, so a character outside the BMP is 2.
    return len(value) + sum(1 for char in value if ord(char) > 0xFFFF)


def _type_name(value: Any) -> str:
    return type(value).__name__


def _check(shape: Shape, value: Any, path: str, problems: list[_Problem]) -> None:
    kind = shape.type_name
    checker = _CHECKERS.get(kind)
    if checker is not None:
        checker(shape, value, path, problems)


def _check_structure(shape: Shape, value: Any, path: str, problems: list[_Problem]) -> None:
    if getattr(shape, "is_document_type", False):
        return
    if not isinstance(value, Mapping):
        problems.append(_Problem(path, f"expected a structure (dict), got {_type_name(value)}", client_side=True))
        return
    for name in shape.required_members:
        if name not in value or value[name] is None:
            problems.append(_Problem(f"{path}.{name}", "required member missing", client_side=True))
    members = shape.members
    for name, item in value.items():
        member = members.get(name)
        if member is None:
            problems.append(_Problem(f"{path}.{name}", "unknown member", client_side=True))
            continue
        _check(member, item, f"{path}.{name}", problems)
    if shape.metadata.get("union"):
        set_members = [name for name, item in value.items() if item is not None and name in members]
        if len(set_members) != 1:
            problems.append(_Problem(path, f"a union takes exactly one member, got {len(set_members)}"))


def _check_size(shape: Shape, size: int, unit: str, path: str, problems: list[_Problem]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        problems.append(_Problem(path, f"{unit} {size} < min {low}", client_side=True))
    if high is not None and size > high:
        problems.append(_Problem(path, f"{unit} {size} > max {high}"))


def _check_list(shape: Shape, value: Any, path: str, problems: list[_Problem]) -> None:
    if not isinstance(value, (list, tuple)):
        problems.append(_Problem(path, f"expected a list, got {_type_name(value)}", client_side=True))
        return
    _check_size(shape, len(value), "entries", path, problems)
    for index, item in enumerate(value):
        _check(shape.member, item, f"{path}[{index}]", problems)


def _check_map(shape: Shape, value: Any, path: str, problems: list[_Problem]) -> None:
    if not isinstance(value, Mapping):
        problems.append(_Problem(path, f"expected a map (dict), got {_type_name(value)}", client_side=True))
        return
    _check_size(shape, len(value), "entries", path, problems)
    for key, item in value.items():
        _check(shape.key, key, f"{path}.{key} (key)", problems)
        _check(shape.value, item, f"{path}.{key}", problems)


def _preview(value: str) -> str:
    return repr(value) if len(value) <= 60 else repr(value[:57]) + "..."


def _check_string(shape: Shape, value: Any, path: str, problems: list[_Problem]) -> None:
    if shape.serialization.get("jsonvalue"):
        return  # any JSON-serialisable value; botocore encodes it
    if not isinstance(value, str):
        problems.append(_Problem(path, f"expected a string, got {_type_name(value)}", client_side=True))
        return
    _check_size(shape, _length(value), "length", path, problems)
    # A sensitive member (a password, a message) is not echoed into errors and logs, as AWS does not.
    shown = "the value" if shape.metadata.get("sensitive") else _preview(value)
    enum = shape.enum
    if enum and value not in enum:
        problems.append(_Problem(path, f"{shown} is not one of {', '.join(enum)}"))
    pattern = shape.metadata.get("pattern")
    if pattern is not None:
        compiled = compiled_pattern(pattern)
        if compiled is not None and compiled.fullmatch(value) is None:
            problems.append(_Problem(path, f"{shown} does not match pattern {pattern}"))


def _check_number(shape: Shape, value: Any, path: str, problems: list[_Problem]) -> None:
    integral = shape.type_name in ("integer", "long")
    allowed = (int,) if integral else (int, float, decimal.Decimal)
    if isinstance(value, bool) or not isinstance(value, allowed):
        expected = "an integer" if integral else "a number"
        problems.append(_Problem(path, f"expected {expected}, got {_type_name(value)}", client_side=True))
        return
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        problems.append(_Problem(path, f"value {value} < min {low}", client_side=True))
    if high is not None and value > high:
        problems.append(_Problem(path, f"value {value} > max {high}"))


def _check_boolean(shape: Shape, value: Any, path: str, problems: list[_Problem]) -> None:
    if not isinstance(value, bool):
        problems.append(_Problem(path, f"expected a boolean, got {_type_name(value)}", client_side=True))


def _check_blob(shape: Shape, value: Any, path: str, problems: list[_Problem]) -> None:
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, (bytes, bytearray)):
        _check_size(shape, len(value), "bytes", path, problems)
    elif not hasattr(value, "read"):
        problems.append(_Problem(path, f"expected bytes or a file, got {_type_name(value)}", client_side=True))


def _check_timestamp(shape: Shape, value: Any, path: str, problems: list[_Problem]) -> None:
    if isinstance(value, bool) or not isinstance(value, (datetime, date, str, int, float)):
        problems.append(_Problem(path, f"expected a timestamp, got {_type_name(value)}", client_side=True))


_CHECKERS: dict[str, Callable[[Shape, Any, str, list[_Problem]], None]] = {
    "structure": _check_structure,
    "list": _check_list,
    "map": _check_map,
    "string": _check_string,
    "integer": _check_number,
    "long": _check_number,
    "double": _check_number,
    "float": _check_number,
    "boolean": _check_boolean,
    "blob": _check_blob,
    "timestamp": _check_timestamp,
}


# -- rules the model does not carry -------------------------------------------------------------

_Rule = Callable[[Mapping[str, Any]], list[_Problem]]
_RULES: dict[tuple[str, str], list[_Rule]] = {}


def _rule(service: str, operation: str) -> Callable[[_Rule], _Rule]:
    def register(function: _Rule) -> _Rule:
        _RULES.setdefault((service, operation), []).append(function)
        return function

    return register


def _utf8(value: Any) -> int:
    return len(value.encode("utf-8")) if isinstance(value, str) else 0


@_rule("sagemaker", "CreateModelPackage")
def _versioned_package_takes_no_tags(params: Mapping[str, Any]) -> list[_Problem]:
    """A versioned package (ModelPackageGroupName) takes its group's tags and refuses its own.

    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackage.html (Tags): "If you
    supply ModelPackageGroupName, your model package belongs to the model group you specify and uses the
    tags associated with the model group. In this case, you cannot supply a tag argument."
    """
    if params.get("ModelPackageGroupName") and params.get("Tags"):
        return [
            _Problem(
                "CreateModelPackage.Tags",
                "cannot be supplied with ModelPackageGroupName (a versioned package uses its group's tags)",
            )
        ]
    return []


def _has_line_break_or_control(text: str) -> bool:
    return any(char in "\n\r\u2028\u2029" or unicodedata.category(char) == "Cc" for char in text)


def _sns_attributes_size(attributes: Any) -> int:
    if not isinstance(attributes, Mapping):
        return 0
    size = 0
    for name, attribute in attributes.items():
        size += _utf8(name)
        if isinstance(attribute, Mapping):
            size += _utf8(attribute.get("DataType")) + _utf8(attribute.get("StringValue"))
            binary = attribute.get("BinaryValue")
            size += len(binary) if isinstance(binary, (bytes, bytearray)) else _utf8(binary)
    return size


@_rule("sns", "Publish")
def _sns_subject_and_message(params: Mapping[str, Any]) -> list[_Problem]:
    """Subject: no line breaks or control characters, at most 100 characters; Message with its
    attributes: at most 256 KiB in UTF-8 (a topic's default MaximumMessageSize).

    https://docs.aws.amazon.com/sns/latest/api/API_Publish.html: "Constraints: Subjects must be UTF-8 text
    with no line breaks or control characters, and less than 100 characters long." and "By default, a
    message can be at most 256 KiB in size (262,144 bytes, not 262,144 characters) [...] Amazon SNS
    validates the combined size of the message body and message attributes".
    SNS itself accepts exactly 100 characters and refuses 101 ("Invalid parameter: Subject"), as
    https://github.com/getmoto/moto/issues/1503 measured; the rule follows SNS, not the word "less".
    """
    problems = []
    subject = params.get("Subject")
    if isinstance(subject, str):
        if len(subject) > SNS_SUBJECT_MAX:
            problems.append(_Problem("Publish.Subject", f"length {len(subject)} > max {SNS_SUBJECT_MAX}"))
        if _has_line_break_or_control(subject):
            problems.append(_Problem("Publish.Subject", "contains a line break or a control character"))
    size = _utf8(params.get("Message")) + _sns_attributes_size(params.get("MessageAttributes"))
    if size > SNS_MESSAGE_MAX:
        problems.append(
            _Problem("Publish.Message", f"{size} bytes (UTF-8, with message attributes) > max {SNS_MESSAGE_MAX}")
        )
    return problems


def eventbridge_entry_size(entry: Mapping[str, Any]) -> int:
    """A PutEvents entry's size as EventBridge computes it.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html: Time counts 14 bytes
    when given; Source, DetailType, Detail and each Resources entry count their UTF-8 bytes.
    """
    size = 14 if entry.get("Time") is not None else 0
    size += sum(_utf8(entry.get(name)) for name in ("Source", "DetailType", "Detail"))
    return size + sum(_utf8(resource) for resource in entry.get("Resources") or [])


@_rule("events", "PutEvents")
def _put_events_size(params: Mapping[str, Any]) -> list[_Problem]:
    """At most 10 entries, and the entries' total size at most 1 MiB.

    https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html: "You can batch
    multiple event entries into one request for efficiency. However, the total entry size must be less
    than 1MB." The limit is on the request (all entries together); an entry of exactly 1,048,576 bytes
    is accepted. The 10-entry cap is also in botocore's model (Entries max 10); repeated here so the
    rule holds with any model version.
    """
    entries = params.get("Entries")
    if not isinstance(entries, list):
        return []
    problems = []
    if len(entries) > EVENTBRIDGE_ENTRIES_MAX:
        problems.append(_Problem("PutEvents.Entries", f"{len(entries)} entries > max {EVENTBRIDGE_ENTRIES_MAX}"))
    total = sum(eventbridge_entry_size(entry) for entry in entries if isinstance(entry, Mapping))
    if total > EVENTBRIDGE_ENTRIES_BYTES_MAX:
        problems.append(
            _Problem(
                "PutEvents.Entries",
                f"total entry size {total} bytes > max {EVENTBRIDGE_ENTRIES_BYTES_MAX} "
                "(Total size of the entries in the request is over the limit)",
            )
        )
    return problems


def _dynamodb_number_size(text: str) -> int:
    try:
        digits = decimal.Decimal(text).normalize().as_tuple().digits
    except (decimal.InvalidOperation, TypeError):
        return len(str(text))
    return math.ceil(len(digits) / 2) + 1


def _dynamodb_value_size(value: Mapping[str, Any]) -> int:
    if len(value) != 1:
        return 0  # not an AttributeValue; the model check names it
    ((kind, item),) = value.items()
    if kind == "S":
        return _utf8(item)
    if kind == "N":
        return _dynamodb_number_size(item)
    if kind == "B":
        return len(item) if isinstance(item, (bytes, bytearray)) else _utf8(item)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8(element) for element in item)
    if kind == "NS":
        return sum(_dynamodb_number_size(element) for element in item)
    if kind == "BS":
        return sum(len(element) for element in item)
    if kind == "L":
        return 3 + sum(1 + _dynamodb_value_size(element) for element in item)
    if kind == "M":
        return 3 + sum(1 + _utf8(name) + _dynamodb_value_size(element) for name, element in item.items())
    return 0


def dynamodb_item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it: attribute names plus values, in bytes.

    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html:
    strings in UTF-8; numbers about one byte per two significant digits plus one; binary its raw bytes;
    null and Boolean one byte; a list or map 3 bytes plus one byte per element.
    """
    return sum(_utf8(name) + _dynamodb_value_size(value) for name, value in item.items() if isinstance(value, Mapping))


def _items_written(operation: str, params: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if operation == "PutItem":
        yield f"{operation}.Item", params.get("Item") or {}
    elif operation == "BatchWriteItem":
        for table, requests in (params.get("RequestItems") or {}).items():
            for index, request in enumerate(requests or []):
                item = (request.get("PutRequest") or {}).get("Item")
                if item:
                    yield f"{operation}.RequestItems.{table}[{index}].PutRequest.Item", item
    elif operation == "TransactWriteItems":
        for index, request in enumerate(params.get("TransactItems") or []):
            item = (request.get("Put") or {}).get("Item")
            if item:
                yield f"{operation}.TransactItems[{index}].Put.Item", item


def _dynamodb_item_size(operation: str) -> _Rule:
    def rule(params: Mapping[str, Any]) -> list[_Problem]:
        """An item is at most 400 KB (names and values); see dynamodb_item_size for the counting.

        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html ("Item size").
        """
        problems = []
        for path, item in _items_written(operation, params):
            size = dynamodb_item_size(item)
            if size > DYNAMODB_ITEM_MAX:
                problems.append(
                    _Problem(
                        path,
                        f"item size {size} bytes > max {DYNAMODB_ITEM_MAX} "
                        "(Item size has exceeded the maximum allowed size)",
                    )
                )
        return problems

    return rule


for _operation in ("PutItem", "BatchWriteItem", "TransactWriteItems"):
    _rule("dynamodb", _operation)(_dynamodb_item_size(_operation))

# https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html (name): no white
# space, brackets < > { } [ ], wildcards ? *, special characters " # % \ ^ | ~ ` $ & , ; : /, control
# characters (U+0000-001F, U+007F-009F), U+FFFE-FFFF, surrogates.
_SFN_NAME_FORBIDDEN = set('<>{}[]?*"#%\\^|~`$&,;:/') | {"\ufffe", "\uffff"}


def _sfn_name_problem(name: str) -> str | None:
    if not 1 <= len(name) <= 80:
        return f"length {len(name)} is not 1-80"
    for char in name:
        if char in _SFN_NAME_FORBIDDEN or char.isspace() or unicodedata.category(char) in ("Cc", "Cs"):
            return f"{_preview(name)} contains {char!r}, which a name may not"
    return None


@_rule("stepfunctions", "StartExecution")
def _start_execution(params: Mapping[str, Any]) -> list[_Problem]:
    """name: 1-80 characters of the allowed set; input: JSON, at most 256 KiB in UTF-8.

    https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html and
    https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html ("Maximum input or output
    size for a task, state, or execution: 256 KiB of data as a UTF-8 encoded string"). The model's max
    of 262144 counts characters; Step Functions counts bytes.
    """
    problems = []
    name = params.get("name")
    if isinstance(name, str):
        problem = _sfn_name_problem(name)
        if problem:
            problems.append(_Problem("StartExecution.name", problem, code="InvalidName"))
    execution_input = params.get("input")
    if isinstance(execution_input, str):
        size = _utf8(execution_input)
        if size > STATE_PAYLOAD_MAX:
            problems.append(_Problem("StartExecution.input", f"{size} bytes (UTF-8) > max {STATE_PAYLOAD_MAX}"))
        try:
            json.loads(execution_input)
        except ValueError:
            problems.append(_Problem("StartExecution.input", "is not valid JSON", code="InvalidExecutionInput"))
    return problems


def _payload_size(payload: Any) -> int | None:
    if isinstance(payload, str):
        return _utf8(payload)
    if isinstance(payload, (bytes, bytearray)):
        return len(payload)
    seekable = getattr(payload, "seekable", None)
    if seekable is not None and seekable():
        position = payload.tell()
        size = payload.seek(0, 2) - position
        payload.seek(position)
        return size
    return None


@_rule("lambda", "Invoke")
def _lambda_request_payload(params: Mapping[str, Any]) -> list[_Problem]:
    """A synchronous Invoke carries at most 6 MB, an asynchronous one (InvocationType Event) 1 MB.

    https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html: "For synchronous invocations, the
    maximum payload size is 6 MB. For asynchronous invocations, the maximum payload size is 1 MB."
    """
    size = _payload_size(params.get("Payload"))
    limit = LAMBDA_ASYNC_PAYLOAD_MAX if params.get("InvocationType") == "Event" else LAMBDA_SYNC_PAYLOAD_MAX
    if size is not None and size > limit:
        return [
            _Problem(
                "Invoke.Payload",
                f"{size} bytes > max {limit} (Request must be smaller than {limit} bytes for the InvokeFunction "
                "operation)",
                code="RequestEntityTooLargeException",
            )
        ]
    return []


def check_lambda_response(payload: bytes) -> str | None:
    """Why Lambda would not return this synchronous response payload, or None.

    https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html: 6 MB for a synchronous
    response. Lambda then reports a Function.ResponseSizeTooLarge error instead of the payload.
    """
    if len(payload) > LAMBDA_RESPONSE_MAX:
        return (
            f"Function.ResponseSizeTooLarge: Response payload size ({len(payload)} bytes) exceeded maximum "
            f"allowed payload size ({LAMBDA_RESPONSE_MAX} bytes)."
        )
    return None


def check_state_payload(value: Any) -> str | None:
    """Why Step Functions would refuse this state input/output (States.DataLimitExceeded), or None.

    The value is the decoded payload; it is measured as compact JSON in UTF-8, as Step Functions
    measures it. https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html: "Maximum
    input or output size for a task, state, or execution: 256 KiB of data as a UTF-8 encoded string".
    States.DataLimitExceeded is terminal: States.ALL in a Catch does not catch it.
    """
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > STATE_PAYLOAD_MAX:
        return f"States.DataLimitExceeded: the payload is {size} bytes, over the {STATE_PAYLOAD_MAX}-byte limit"
    return None


# -- validation ------------------------------------------------------------------------------


def _problems(service: str, operation: str, params: Mapping[str, Any]) -> list[_Problem]:
    problems: list[_Problem] = []
    model = _operation_model(service, operation)
    if model.input_shape is not None:
        _check(model.input_shape, params, operation, problems)
    elif params:
        problems.append(_Problem(operation, "takes no parameters", client_side=True))
    for rule in _RULES.get((service, operation), ()):
        problems.extend(rule(params))
    return problems


def validate_request(service: str, operation: str, params: Mapping[str, Any]) -> list[str]:
    """Every reason AWS would refuse this request: botocore's model constraints (required and unknown
    members, types, min/max lengths, sizes and values, patterns, enums) and the documented rules the
    model lacks (`validate_semantics`). Each problem is named by its path, e.g.
    `CreateModelPackage.CustomerMetadataProperties.gate_report: length 300 > max 256`.

    `service` is botocore's service name (sagemaker, sns, events, ...), `operation` the API name.
    """
    return [str(problem) for problem in _problems(service, operation, params)]


def validate_semantics(service: str, operation: str, params: Mapping[str, Any]) -> list[str]:
    """Only the documented rules botocore's model does not carry (also part of `validate_request`)."""
    return [str(problem) for rule in _RULES.get((service, operation), ()) for problem in rule(params)]


# -- aws-sdk task error names -----------------------------------------------------------------

_WORD_PARTS = regex.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# The names aws-sdk Task ARNs use where they differ from botocore's.
_SDK_SERVICE_ALIASES = {"sfn": "stepfunctions", "eventbridge": "events", "cloudwatchlogs": "logs", "acmpca": "acm-pca"}


def _java_case(name: str) -> str:
    """Acronyms cased as words, as the AWS SDK for Java 2.x names its classes: DynamoDB -> DynamoDb."""
    words = _WORD_PARTS.findall(name)
    merged: list[str] = []
    for word in words:
        if word.isdigit() and merged:
            merged[-1] += word  # EC2 -> Ec2, S3 -> S3
        else:
            merged.append(word[0].upper() + word[1:].lower())
    return "".join(merged)


def _sdk_service_model(service: str) -> ServiceModel | None:
    for name in (service, _SDK_SERVICE_ALIASES.get(service.lower(), service.lower())):
        try:
            return _service_model(name)
        except UnknownServiceError:
            continue
    return None


def aws_sdk_error_name(service: str, error_code: str) -> str:
    """The Error an aws-sdk Task reports for a service error, e.g. SageMaker.ResourceNotFoundException.

    https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html: the error is
    `ServiceName.ErrorName`, both in Pascal case, and always ends in `Exception` even where the service's
    own error name does not (S3 BucketAlreadyExists -> S3.BucketAlreadyExistsException). The names are
    the AWS SDK for Java 2.x classes: the service name is its serviceId with acronyms cased as words
    (DynamoDB -> DynamoDb, SFN -> Sfn); an error the service model does not list (throttling, SageMaker's
    ValidationException) is the service's generic exception, SageMaker.SageMakerException.
    `service` is the aws-sdk ARN's service name (sagemaker, dynamodb, sfn) or botocore's.
    """
    model = _sdk_service_model(service)
    if model is None:
        prefix = _java_case(service)
        return f"{prefix}.{prefix}Exception"
    words = model.metadata.get("serviceId", service).split()
    if len(words) > 1 and words[0] in ("AWS", "Amazon"):
        words = words[1:]
    if len(words) > 1 and words[-1] == "Service":
        words = words[:-1]
    prefix = "".join(_java_case(word) for word in words)
    modelled = {}
    for shape in model.error_shapes:
        modelled[shape.name] = shape.name
        modelled[shape.metadata.get("error", {}).get("code", shape.name)] = shape.name
    shape_name = modelled.get(error_code)
    if shape_name is None:
        return f"{prefix}.{prefix}Exception"
    name = _java_case(shape_name)
    if name.endswith("Fault"):
        name = name[: -len("Fault")] + "Exception"
    elif not name.endswith("Exception"):
        name += "Exception"
    return f"{prefix}.{name}"


# -- strict mode: every boto3 call in the process is validated first ------------------------------


@dataclass(frozen=True)
class Violation:
    """A request strict mode refused, with the problems it was refused for."""

    service: str
    operation: str
    code: str
    problems: tuple[str, ...]


_ERROR_CODES = {"sns": "InvalidParameter", "iam": "ValidationError"}
_STATUS = {"RequestEntityTooLargeException": 413}
_strict_lock = threading.Lock()
_strict_depth = 0
_original_make_api_call: Callable[..., Any] | None = None
_violations: list[Violation] = []


def violations() -> list[Violation]:
    """The requests refused since the last clear_violations(), oldest first."""
    with _strict_lock:
        return list(_violations)


def clear_violations() -> None:
    with _strict_lock:
        _violations.clear()


def _refusal(service: str, operation: str, problems: list[_Problem]) -> tuple[str, str]:
    coded = [problem.code for problem in problems if problem.code]
    code = coded[0] if coded else _ERROR_CODES.get(service, "ValidationException")
    count = len(problems)
    message = f"{count} validation error{'s' if count != 1 else ''} detected: " + "; ".join(map(str, problems))
    return code, message


def _strict_make_api_call(client: Any, operation_name: str, api_params: Mapping[str, Any]) -> Any:
    original = _original_make_api_call
    assert original is not None
    service = client.meta.service_model.service_name
    problems = _problems(service, operation_name, api_params)
    # botocore refuses missing, unknown, mistyped and too-small parameters itself before sending
    # (ParamValidationError), so AWS never sees those: let botocore answer as it would.
    if problems and not (client.meta.config.parameter_validation and any(problem.client_side for problem in problems)):
        code, message = _refusal(service, operation_name, problems)
        with _strict_lock:
            _violations.append(Violation(service, operation_name, code, tuple(map(str, problems))))
        response = {
            "Error": {"Code": code, "Message": message, "Type": "Sender"},
            "ResponseMetadata": {"HTTPStatusCode": _STATUS.get(code, 400), "RequestId": "strict-requests"},
        }
        error_class = client.exceptions.from_code(code)
        raise error_class(response, operation_name)
    return original(client, operation_name, api_params)


@contextlib.contextmanager
def strict_requests() -> Iterator[None]:
    """Within it, every boto3 client call in the process is validated before it is sent (and before
    moto sees it); a request AWS would refuse raises the ClientError AWS would answer with.

    Re-entrant and thread-safe: nested or concurrent uses share one patch, removed when the last ends.
    """
    global _strict_depth, _original_make_api_call
    with _strict_lock:
        if _strict_depth == 0:
            _original_make_api_call = botocore.client.BaseClient._make_api_call
            botocore.client.BaseClient._make_api_call = _strict_make_api_call  # type: ignore[method-assign]
        _strict_depth += 1
    try:
        yield
    finally:
        with _strict_lock:
            _strict_depth -= 1
            if _strict_depth == 0:
                # The original stays referenced: a call already inside the patch still reaches botocore.
                botocore.client.BaseClient._make_api_call = _original_make_api_call  # type: ignore[method-assign]
