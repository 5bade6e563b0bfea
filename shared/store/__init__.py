"""The one Postgres + pgvector store: connections, migrations, tracks, ledger."""

from shared.store.db import Database
from shared.store.migrations import apply_migrations
from shared.store.tracks import TrackStore, upsert_tracks

__all__ = ["Database", "TrackStore", "apply_migrations", "upsert_tracks"]
