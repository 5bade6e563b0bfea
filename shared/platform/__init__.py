"""The platform layer: what every cloud entry point shares, apart from the domain.

- :mod:`shared.platform.runtime` — one function's per-process state on one cloud (settings,
  services, relay of the outbox, dead-lettering of envelopes that can never be processed);
- :mod:`shared.platform.jobs` — the one ``deliver`` (pushed jobs) and the one ``drain`` (the
  Postgres outbox) of every job-consuming function;
- :mod:`shared.platform.aws` / :mod:`shared.platform.gcp` — the Powertools and functions-framework
  entry points of those functions (imported only by the matching ``functions/<fn>/aws.py`` /
  ``gcp.py``, so neither SDK loads where it is not used).

Domain packages (``shared.intel``, ``shared.vision``, ``shared.store``, ...) never import it.
"""

from shared.platform.jobs import JobHandling, JobOutcome, deliver, drain, per_job
from shared.platform.runtime import EntrySettings, FunctionRuntime, load_entry_settings

__all__ = [
    "EntrySettings",
    "FunctionRuntime",
    "JobHandling",
    "JobOutcome",
    "deliver",
    "drain",
    "load_entry_settings",
    "per_job",
]
