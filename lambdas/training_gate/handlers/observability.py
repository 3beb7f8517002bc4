"""Powertools instances shared by the handlers of one function (one function per module import)."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="TrainingGate")
# Every handler correlates its logs by the training job name it works on.
JOB_NAME_PATH = "job.TrainingJobName"
