"""The embedded local engine: the synthesized gate running on an emulated AWS account (moto 5.2.5).

It takes the CloudFormation template that `cdk synth` wrote, creates the gate's functions, topics,
bucket, table and state machine in moto, and runs the real ASL on moto's Step Functions interpreter.
Lambda tasks run the real handler code in this process. Nothing leaves the machine.

    template   reading the template: resources, substitutions, rule patterns, input transformers
    moto_hooks every private moto hook the engine uses, each named after its canary test
    strict     AWS rules moto does not enforce (payload limits, request validation, error names)
    provision  the template's resources, created in the emulated account
    engine     LocalGate: start executions, watch them, deliver their end-of-execution events
"""

from training_gate_cli.local_engine.constants import (
    ACCOUNT_ID,
    LOCAL_ENVIRONMENT,
    MOTO_VERSION,
    REGION,
    TRAINING_LOG_GROUP,
    LocalEngineError,
)
from training_gate_cli.local_engine.engine import ExecutionResult, Fault, LocalGate
from training_gate_cli.local_engine.moto_hooks import cloudwatch_filter_patterns, load_test_case
from training_gate_cli.local_engine.template import (
    apply_input_transformer,
    load_template,
    resources_of,
    rule_matches,
    substitute,
)

__all__ = [
    "ACCOUNT_ID",
    "LOCAL_ENVIRONMENT",
    "MOTO_VERSION",
    "REGION",
    "TRAINING_LOG_GROUP",
    "ExecutionResult",
    "Fault",
    "LocalEngineError",
    "LocalGate",
    "apply_input_transformer",
    "cloudwatch_filter_patterns",
    "load_template",
    "load_test_case",
    "resources_of",
    "rule_matches",
    "substitute",
]
