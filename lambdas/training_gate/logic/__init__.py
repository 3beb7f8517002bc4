"""Use cases: each composes pure domain logic with the AWS-access layer."""
