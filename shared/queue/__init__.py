"""Queue port and adapters. Cloud adapters (SQS, Pub/Sub) live beside the Postgres one."""

from shared.queue.base import ClaimedJob, JobSource, NewJob, Queue, backoff_delay

__all__ = ["ClaimedJob", "JobSource", "NewJob", "Queue", "backoff_delay"]
