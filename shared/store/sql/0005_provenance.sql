-- contentfn schema v5: provenance. Which object versions and which scraped pages each track came
-- from, so a track can be traced back to its inputs and an input's deletion can remove exactly the
-- tracks that nothing else feeds. One track can have many links; the links go with the track.

-- One row per (track, object version). ``line`` is where the track's row starts in that version
-- (1-based; the record index for a .json array); a version listing one key twice keeps the last.
-- ``version`` is the GCS generation, the S3 versionId (or ETag when unversioned), the local mtime:
-- the same value that keys the ingest's idempotency record.
-- No foreign key to tracks: its per-row check cost a bulk ingest about half a second per 58K rows,
-- and the ingest links only ids its own upsert just returned or read. Deleting tracks deletes their
-- links in the same statement (shared.store.provenance.delete_tracks); a link whose track is gone
-- by other means is ignored by every reader, which joins tracks.
CREATE TABLE track_objects (
    track_id      bigint      NOT NULL,
    bucket        text        NOT NULL,
    object_key    text        NOT NULL,
    version       text        NOT NULL,
    line          integer,
    linked_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (track_id, bucket, object_key, version)
);
-- A deletion event names the object (and maybe its version): find its tracks without a scan.
CREATE INDEX track_objects_object_idx ON track_objects (bucket, object_key, version);

-- One row per (track, scraped page): the lyrics page or the feed page the item was read from.
CREATE TABLE track_pages (
    track_id      bigint      NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    url           text        NOT NULL,
    source        text        NOT NULL,
    linked_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (track_id, url)
);
