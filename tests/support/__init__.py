"""Test support: a Lambda context, typed builders for the contract between the states, in-memory fakes
of the AWS-access layer. Nothing here is production code."""
