"""Failures of the gate's own environment, as opposed to verdicts on the artifact."""

from __future__ import annotations


class InspectorEnvironmentError(Exception):
    """The inspection could not run: access or KMS denied, throttling, a full disk, the sandbox
    failing to start. This is an error for operations to fix, never a rejection of the model; the
    state machine's Catch routes it by this type name."""


class ArtifactAccessDenied(InspectorEnvironmentError):
    """The gate's role may not read the artifact (or its KMS key): fix the permissions, not the model."""
