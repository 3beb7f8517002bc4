"""The logical IDs of stateful resources are a public contract.

CloudFormation replaces a resource whose logical ID changes: the decision table (the audit log and the
exactly-once guard), the reports bucket and the key would be created anew and the retained ones orphaned.
Splitting the construct must never move them; this snapshot was taken before the split."""

from __future__ import annotations

import pytest

STATEFUL = {
    "GateDecisionsD58520CC": "AWS::DynamoDB::Table",
    "GateReports918C2821": "AWS::S3::Bucket",
    "GateKeyB17BDAF2": "AWS::KMS::Key",
    "GateNotificationsB48D426C": "AWS::SNS::Topic",
    "GateOperationsD269067B": "AWS::SNS::Topic",
    "GateFailedStarts7647E835": "AWS::SQS::Queue",
    "GateCallbacksEA6B901B": "AWS::SQS::Queue",
    "GateCallbackDeadLetters45596F63": "AWS::SQS::Queue",
}


@pytest.mark.parametrize(("logical_id", "resource_type"), sorted(STATEFUL.items()))
def test_stateful_resource_keeps_its_logical_id(template: dict, logical_id: str, resource_type: str) -> None:
    resources = template["Resources"]
    assert logical_id in resources, f"{logical_id} moved: CloudFormation would replace the {resource_type}"
    assert resources[logical_id]["Type"] == resource_type


def test_no_other_resource_of_a_stateful_type(template: dict) -> None:
    # A second table or bucket would mean a resource was duplicated under a new path. (The operations
    # key and the alert function's dead-letter queue are new resources, not moved ones.)
    stateful_types = {"AWS::DynamoDB::Table", "AWS::S3::Bucket"}
    found = {k for k, v in template["Resources"].items() if v["Type"] in stateful_types}
    assert found == {k for k, v in STATEFUL.items() if v in stateful_types}
