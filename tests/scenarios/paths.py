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
    "AfterRegistration",
    "Registered",
]
# The tail of a rejection or an inconclusive decision: the event first, then the owners (and complete).
NOTIFIED_TAIL = ["Decision", "RecordOutcome", "AfterRecord", "NotifyOwners", "AfterNotify", "NotifiedOutcome"]
# Every gate failure ends so (pipelines waiting on the execution answered first); the end-of-execution event
# tells operations.
GATE_ERROR_TAIL = ["DescribeGateError", "AnswerGateError", "GateError"]
# One more poll of a job still InProgress.
POLL = ["DescribeTrainingJob", "TrainingJobStatus", "WaitForTrainingJob", "CountPoll"]
