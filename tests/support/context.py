"""What Lambda hands a handler as its context."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LambdaContext:
    function_name: str = "test"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = "test"
    log_group_name: str = "test"
    log_stream_name: str = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


CONTEXT = LambdaContext()
