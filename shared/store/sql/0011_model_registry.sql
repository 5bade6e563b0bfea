-- Model registry: embedding models with a lifecycle state, and vectors of any dimension per model.
--
-- `embeddings.embedding` loses its fixed dimension so models of different sizes share the table.
-- HNSW needs a dimension, so each model's index becomes a partial expression index over a cast to
-- that model's dimension (`(embedding::vector(N)) vector_cosine_ops WHERE model = key`). Indexes
-- over the plain column cannot survive the type change: they are dropped here and rebuilt in the
-- new shape by the embed function's index keeper (search does an exact scan until then).
DO $$
DECLARE
    idx record;
BEGIN
    FOR idx IN
        SELECT indexname FROM pg_indexes
        WHERE schemaname = current_schema() AND tablename = 'embeddings' AND indexname LIKE 'embeddings\_hnsw\_%'
    LOOP
        EXECUTE format('DROP INDEX %I', idx.indexname);
    END LOOP;
END
$$;

ALTER TABLE embeddings ALTER COLUMN embedding TYPE vector;

-- One row per model; `key` (name@version) is the value stored in embeddings.model.
CREATE TABLE embedding_models (
    key            text        PRIMARY KEY,
    name           text        NOT NULL,
    version        text        NOT NULL,
    provider       text        NOT NULL CHECK (provider IN ('onnx', 'openai')),
    dimensions     integer     NOT NULL CHECK (dimensions BETWEEN 1 AND 2000),  -- pgvector's HNSW limit
    max_tokens     integer     NOT NULL CHECK (max_tokens > 0),
    manifest_hash  text,
    options        jsonb       NOT NULL DEFAULT '{}'::jsonb,  -- provider settings: variant, endpoint URL, batch
    state          text        NOT NULL CHECK (state IN ('shadow', 'active', 'retired')),
    -- Resumable backfill: every track with id <= backfill_after has been given a job for this model.
    backfill_after bigint      NOT NULL DEFAULT 0,
    -- The highest track id when the model was added: later tracks are embedded with every model
    -- by the embed function itself, so the backfill's passes stop here and uploads cannot keep
    -- a pass from ever finding nothing left.
    backfill_until bigint      NOT NULL DEFAULT 0,
    backfill_done  boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    activated_at   timestamptz,
    retired_at     timestamptz,
    CONSTRAINT embedding_models_name_version_key UNIQUE (name, version)
);
-- At most one model serves search; activate and rollback swap it in one transaction.
CREATE UNIQUE INDEX embedding_models_one_active ON embedding_models ((true)) WHERE state = 'active';

-- Every switch of the active model, newest last: rollback returns to the previous one.
CREATE TABLE embedding_model_switches (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_key   text,
    to_key     text        NOT NULL,
    reason     text        NOT NULL CHECK (reason IN ('activate', 'rollback')),
    created_at timestamptz NOT NULL DEFAULT now()
);
