"""A Lambda context object for invoking handlers outside Lambda (``make invoke``, tests, benches)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

__all__ = ["LocalLambdaContext"]


@dataclass
class LocalLambdaContext:
    """The attributes and method Powertools and handlers read from ``context``."""

    function_name: str = "contentfn-local"
    timeout_s: float = 60.0
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/contentfn-local"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:eu-west-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))
