"""Pure logic of the gate: no boto3, no scikit-learn, no I/O."""
