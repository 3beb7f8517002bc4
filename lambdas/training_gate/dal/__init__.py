"""The AWS-access layer: the only code that touches boto3. Clients are injectable for tests."""
