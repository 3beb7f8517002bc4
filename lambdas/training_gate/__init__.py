"""training-gate: a quality gate for Amazon SageMaker training jobs."""
