"""TrainingGate: the reusable construct. The workflow itself lives in statemachine/training_gate.asl.json.

storage (keys, topics, bucket, table: in this construct's own scope, so logical IDs never move)
-> functions (one role each) -> workflow (the ASL, its trigger and its end-of-execution alert)
-> monitoring (alarms to operations, a dashboard)
"""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from infra.config import GateConfig
from infra.functions import FunctionProps, GateFunctions
from infra.monitoring import GateMonitoring, MonitoringProps
from infra.storage import build_storage
from infra.workflow import ASL_PATH, GateWorkflow, WorkflowProps

__all__ = ["ASL_PATH", "TrainingGate", "TrainingGateProps"]


@dataclass(frozen=True)
class TrainingGateProps:
    config: GateConfig


class TrainingGate(Construct):
    """EventBridge rule -> Step Functions (the ASL) -> functions -> Model Registry / SNS."""

    def __init__(self, scope: Construct, construct_id: str, *, props: TrainingGateProps) -> None:
        super().__init__(scope, construct_id)
        config = props.config
        self.storage = build_storage(self, config)
        self.functions = GateFunctions(self, "Functions", props=FunctionProps(config=config, storage=self.storage))
        self.workflow = GateWorkflow(
            self,
            "Workflow",
            props=WorkflowProps(
                config=config,
                storage=self.storage,
                functions=self.functions,
                failed_starts=self.storage.failed_starts,
            ),
        )
        self.monitoring = GateMonitoring(
            self,
            "Monitoring",
            props=MonitoringProps(
                storage=self.storage,
                functions=self.functions,
                workflow=self.workflow,
                failed_starts=self.storage.failed_starts,
            ),
        )

    @property
    def state_machine(self):
        return self.workflow.state_machine
