-- contentfn schema v1: tracks, embeddings, local job queue, dead letters, idempotency, ledger.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE tracks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text        NOT NULL,
    source_id     text        NOT NULL,
    artist        text        NOT NULL,
    title         text        NOT NULL,
    lyrics        text        NOT NULL,
    metadata      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    content_hash  text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tracks_source_key UNIQUE (source, source_id)
);
CREATE INDEX tracks_artist_lower_idx ON tracks (lower(artist));
CREATE INDEX tracks_content_hash_idx ON tracks (content_hash);

-- One row per (track, model): re-embedding with a new model writes beside the old one.
-- HNSW indexes are partial, one per model, created by the embed function on first use.
CREATE TABLE embeddings (
    track_id      bigint      NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    model         text        NOT NULL,
    embedding     vector(384) NOT NULL,
    content_hash  text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (track_id, model)
);

CREATE TABLE jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text        NOT NULL,
    payload       jsonb       NOT NULL,
    dedup_key     text        UNIQUE,
    attempts      integer     NOT NULL DEFAULT 0,
    max_attempts  integer     NOT NULL,
    visible_at    timestamptz NOT NULL DEFAULT now(),
    lease_id      uuid,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_claim_idx ON jobs (kind, visible_at, id);

-- Dead letters: jobs that failed for good, and poison events that never became jobs (job_id NULL).
CREATE TABLE dead_jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id        bigint,
    kind          text        NOT NULL,
    payload       jsonb       NOT NULL,
    dedup_key     text,
    attempts      integer     NOT NULL,
    last_error    text        NOT NULL,
    retryable     boolean     NOT NULL,
    created_at    timestamptz NOT NULL,
    died_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_jobs_kind_idx ON dead_jobs (kind, died_at);

CREATE TABLE idempotency (
    key           text        PRIMARY KEY,
    status        text        NOT NULL CHECK (status IN ('in_progress', 'done')),
    result        jsonb,
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Where is my file? One row per (subject, stage): a file's ingest, a track's embedding, ...
CREATE TABLE ledger (
    subject       text        NOT NULL,
    stage         text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('running', 'ok', 'partial', 'failed', 'rejected')),
    attempts      integer     NOT NULL DEFAULT 1,
    last_error    text,
    detail        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    duration_ms   double precision,
    PRIMARY KEY (subject, stage)
);
CREATE INDEX ledger_stage_status_idx ON ledger (stage, status);
