"""Names and limits every layer shares, each defined once. No AWS access here."""

from __future__ import annotations

# SageMaker's own rule for training job names (CreateTrainingJob: TrainingJobName).
TRAINING_JOB_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
TRAINING_JOB_NAME_MAX = 63
# CreateHyperParameterTuningJob: HyperParameterTuningJobName is 1-32 characters of the same alphabet.
TUNING_JOB_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$"
TUNING_JOB_NAME_MAX = 32
# A tuning job's decision is keyed apart from any training job's: "/" never occurs in a training job
# name, and the prefix is the resource type of the tuning job's ARN.
TUNING_DECISION_PREFIX = "hyper-parameter-tuning-job/"
# The sort key of the item that records a failed or stopped job's notice: no policy judged it.
NOT_JUDGED = "not-judged"
# How many of a tuning job's completed training jobs, best first, may be judged before it is rejected.
TUNING_CANDIDATES_MAX = 10
# SageMaker writes one stream per host and job here: <job>/algo-<n>-<epoch>.
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# The namespace of the algorithm metrics SageMaker publishes to CloudWatch: the same string.
TRAINING_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
POLICY_PARAMETER_PREFIX = "/training-gate/policies/"
DECISION_EVENT_SOURCE = "training-gate"
DECISION_EVENT_DETAIL_TYPE = "Training Gate Decision"
# Where each execution writes its bulky data (report, metrics, statistics) in the reports bucket.
REPORTS_PREFIX = "reports/"
# Every state's input and output stays under this, far inside Step Functions' 256 KiB hard limit
# (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html): bulky data goes to S3.
STATE_PAYLOAD_BUDGET = 64 * 1024
# The opt-in tag: by default the gate judges only training jobs that carry it (cdk.json required_job_tag).
DEFAULT_JOB_TAG_KEY = "training-gate"
DEFAULT_JOB_TAG_VALUE = "enabled"
