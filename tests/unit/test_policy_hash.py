"""A policy's sha256 keys stored decisions and champion values: new fields must not move it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.config import REPO_ROOT, read_context
from training_gate.domain.policy import Policy

# Measured on the policies as shipped before the policy gained any field; never update these to
# make a test pass: a different hash re-decides every job and orphans every stored champion value.
SHIPPED_DEFAULT_SHA256 = "064a9fefccbad8cee64b8c72789ad3bdeb1bc97691dc9629efaf415b7de9211f"
EXAMPLE_SHA256 = {
    "examples/policy.yaml": "6580a5c0b7d0ada5c225d38925b4b3dcad9fdda03d2314ff6a9c158195ddd0e5",
    "examples/group-policy.json": "93b5be24b094e16277cffb45883a206a907f69cfbb2eeba796d04824b10e1515",
}


def test_the_shipped_default_policy_keeps_its_hash():
    assert Policy.model_validate(read_context()["policy"]).sha256() == SHIPPED_DEFAULT_SHA256


@pytest.mark.parametrize("path", sorted(EXAMPLE_SHA256))
def test_the_example_policies_keep_their_hash(path: str):
    document = yaml.safe_load(Path(REPO_ROOT, path).read_text())
    assert Policy.model_validate(document).sha256() == EXAMPLE_SHA256[path]


def test_the_hash_survives_a_round_trip_through_the_report():
    policy = Policy.model_validate(read_context()["policy"])
    assert Policy.model_validate(policy.model_dump(mode="json")).sha256() == SHIPPED_DEFAULT_SHA256


def test_the_shipped_policy_dumps_the_keys_it_always_had():
    # The dump is what the functions' environment, the report and the hash are made of.
    dumped = Policy.model_validate(read_context()["policy"]).model_dump(mode="json")
    assert set(dumped) == {"version", "rules", "champion", "artifact_checks", "outcome"}
    assert all(set(rule) == {"metric", "operator", "threshold", "required", "source"} for rule in dumped["rules"])
