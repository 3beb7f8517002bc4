"""CDK infrastructure: the TrainingGate construct and the stack that composes it."""
