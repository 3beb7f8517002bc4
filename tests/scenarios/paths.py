"""State paths the scenarios expect, written once."""

# A job that is already Completed, from input to registration.
REGISTERED_PATH = [
    "ReceiveInput",
    "ValidateInput",
    "DescribeTrainingJob",
    "TrainingJobStatus",
    "InspectArtifact",
    "CollectMetrics",
    "EvaluatePolicy",
    "Decision",
    "RegisterModel",
    "Registered",
]
# One more poll of a job still InProgress.
POLL = ["DescribeTrainingJob", "TrainingJobStatus", "WaitForTrainingJob", "CountPoll"]
