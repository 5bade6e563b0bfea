"""deadletters: bring every cloud dead-letter queue's messages into ``dead_jobs`` on a schedule.

``dead_jobs`` is the dead-letter store of record (``contentfn dead``, ``/dead-jobs``); the SQS DLQs
and Pub/Sub dead-letter subscriptions that Terraform lists in ``CONTENTFN_DEAD_LETTER_SOURCES``
only hold messages until this runs. Each message is imported once however often the import runs
(``shared.queue.dead_import``), so a tick needs no idempotency record of its own.
"""

from __future__ import annotations

from shared.queue.dead_import import ImportReport, import_dead_letter_sources
from shared.services import Services

__all__ = ["import_dead_letters"]

_PER_SOURCE = 1000  # messages per queue and tick: a large backlog is taken over several ticks


def import_dead_letters(services: Services) -> ImportReport:
    """Drain each configured dead-letter queue into the dead-letter store."""
    settings = services.settings
    return import_dead_letter_sources(services.db, settings.dead_letter_sources, settings, max_messages=_PER_SOURCE)
