"""State paths the scenarios expect, written once."""

# A job that is already Completed, from input to registration.
REGISTERED_PATH = [
    "ReceiveInput",
    "ValidateInput",
    "JobKind",
    "DescribeTrainingJob",
    "TrainingJobStatus",
    "InspectArtifact",
    "CollectMetrics",
    "EvaluatePolicy",
    "Decision",
    "RegisterModel",
    "Registered",
]
# The tail of a rejection or an inconclusive decision: the event first, then the owners (and complete).
NOTIFIED_TAIL = ["Decision", "RecordOutcome", "AfterRecord", "NotifyOwners", "AfterNotify", "NotifiedOutcome"]
# Every gate failure ends so; the end-of-execution event tells operations.
GATE_ERROR_TAIL = ["DescribeGateError", "GateError"]
# One more poll of a job still InProgress.
POLL = ["DescribeTrainingJob", "TrainingJobStatus", "WaitForTrainingJob", "CountPoll"]
