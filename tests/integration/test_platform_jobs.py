"""The one ``deliver`` and the one ``drain`` of the platform layer, over real PostgreSQL: a handling
made of a real per-job core (work that records what it saw), and the after-batch hook embed uses."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from shared.errors import PoisonError
from shared.events import Job
from shared.platform.jobs import Backlog, JobHandling, JobOutcome, deliver, drain, per_job, process_claimed
from shared.platform.runtime import FunctionRuntime
from shared.queue.base import ClaimedJob, JobAcks, NewJob
from shared.services import Services

KIND = "platform-test"


class Recorder:
    """A core that settles each job on its own: ``bad`` payloads are poison, ``flaky`` ones fail."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.hooks: list[tuple[int, int | None]] = []

    def process(self, claimed: Sequence[ClaimedJob], services: Services, *, acks: JobAcks | None = None) -> JobOutcome:
        def work(c: ClaimedJob) -> None:
            self.seen.append(c.job.payload["n"])
            if c.job.payload.get("bad"):
                raise PoisonError("this job can never succeed")
            if c.job.payload.get("flaky"):
                raise ConnectionError("the dependency is down")

        return process_claimed(claimed, services, work, acks=acks)

    def run_batch(self, services: Services) -> JobOutcome:
        claimed = services.queue.claim(KIND, 2)
        return self.process(claimed, services) if claimed else JobOutcome()

    def after_batch(self, services: Services, backlog: Backlog | None) -> Mapping[str, Any]:
        self.hooks.append((len(self.seen), backlog() if backlog is not None else None))
        return {"hook": "ran"}


@pytest.fixture
def runtime(services: Services) -> Iterator[FunctionRuntime]:
    rt = FunctionRuntime("platform-test", "local")
    rt.use(services)
    yield rt


def _job(n: int, kind: str = KIND, **extra: Any) -> Job:
    return Job(id=f"m-{n}", kind=kind, payload={"n": n, **extra})


def test_drain_adds_up_every_batch_until_the_outbox_is_empty_then_runs_the_hook_once(
    services: Services, runtime: FunctionRuntime
) -> None:
    # GIVEN five jobs in the outbox, one of them poison, and a handling that claims two at a time
    services.queue.enqueue_many([NewJob(KIND, {"n": n, "bad": n == 3}) for n in range(5)])
    core = Recorder()
    handling = JobHandling(KIND, core.process, core.run_batch, after_batch=core.after_batch)
    # WHEN the outbox is drained
    totals = drain(handling, runtime, budget_s=30)
    # THEN three batches settled the five jobs, the poison one dead-lettered, and the hook ran after all
    assert totals == {"claimed": 5, "done": 4, "retried": 0, "dead": 1, "batches": 3, "hook": "ran"}
    assert sorted(core.seen) == [0, 1, 2, 3, 4]
    assert core.hooks == [(5, None)]
    assert services.queue.depth(KIND) == 0 and services.queue.dead_count(KIND) == 1


def test_drain_of_an_empty_outbox_reports_zeros_without_a_hook(services: Services, runtime: FunctionRuntime) -> None:
    core = Recorder()
    totals = drain(per_job(KIND, core.process, core.run_batch), runtime, budget_s=30)
    assert totals == {"claimed": 0, "done": 0, "retried": 0, "dead": 0, "batches": 0}


def test_deliver_settles_pushed_jobs_and_hands_the_source_backlog_to_the_hook(
    services: Services, runtime: FunctionRuntime
) -> None:
    # GIVEN a pushed batch: a good job, a flaky one, a poison one and one of another kind
    core = Recorder()
    handling = JobHandling(KIND, core.process, core.run_batch, after_batch=core.after_batch)
    jobs = [_job(1), _job(2, flaky=True), _job(3, bad=True), _job(4, kind="other")]
    # WHEN it is delivered from a queue where 7 more jobs wait
    delivery = deliver(handling, jobs, runtime, lambda: 7)
    # THEN the flaky job is to be retried, poison and the wrong kind are dead-lettered in the store,
    # the wrong kind never reached the core, and the hook ran once with the source's backlog
    assert delivery.to_retry == {"m-2"}
    assert delivery.dead == {"m-3", "m-4"}
    assert core.seen == [1, 2, 3]
    assert core.hooks == [(3, 7)]
    with services.db.connection() as conn:
        dead = conn.execute("SELECT count(*) FROM dead_jobs WHERE kind = 'platform-test'").fetchone()
        conn.commit()
    assert dead == (2,)
    assert services.queue.depth(KIND) == 0  # pushed jobs never touch the outbox


def test_failing_hook_leaves_delivered_jobs_settled_and_drain_totals_whole(
    services: Services, runtime: FunctionRuntime
) -> None:
    core = Recorder()

    def broken(services: Services, backlog: Backlog | None) -> Mapping[str, Any]:
        raise RuntimeError("index build failed")

    handling = JobHandling(KIND, core.process, core.run_batch, after_batch=broken)
    delivery = deliver(handling, [_job(1)], runtime)
    assert delivery.to_retry == set() and delivery.dead == set()
    services.queue.enqueue_many([NewJob(KIND, {"n": 9})])
    assert drain(handling, runtime, budget_s=30) == {"claimed": 1, "done": 1, "retried": 0, "dead": 0, "batches": 1}
