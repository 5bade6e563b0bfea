"""``contentfn`` under libfaketime: a worker whose wall clock is off by minutes.

libfaketime 0.9.10 (Debian's) turns Python's ``time.sleep`` (``clock_nanosleep`` with an absolute
monotonic deadline) into EINVAL even when the monotonic clock is left alone; a timed wait on an
event, which the same libraries use everywhere else, works. So ``time.sleep`` waits on an event
here. Only this launcher does it; the wall clock (``time.time``, ``datetime.now``) stays skewed.
"""

from __future__ import annotations

import sys
import threading
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    threading.Event().wait(seconds)


if __name__ == "__main__":
    time.sleep = _sleep
    from local.cli import main

    sys.argv[0] = "contentfn"
    main()
