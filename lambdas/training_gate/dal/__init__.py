"""The AWS-access layer: the only package that imports boto3. One module per service.

Every adapter takes its client as an argument so tests can pass their own (or an in-memory fake of
the same methods); without one it uses `clients.client(service)`, which retries throttling."""
