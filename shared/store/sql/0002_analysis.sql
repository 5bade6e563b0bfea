-- contentfn schema v2: enrichments, analyses, LLM cost ledger and daily budget, scrape cursors,
-- distilled predictor models.

-- One row per (track, kind): 'features' (algorithmic) and 'metadata' (Spotify-compatible match).
-- content_hash pins the text version the row was computed from: a changed lyric recomputes it.
CREATE TABLE enrichments (
    track_id      bigint      NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    kind          text        NOT NULL,
    version       text        NOT NULL,
    content_hash  text        NOT NULL,
    data          jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (track_id, kind)
);

-- Content-addressed: the same text, analyzer and prompt version is analysed once.
CREATE TABLE analyses (
    track_id        bigint        NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    analyzer        text          NOT NULL,
    prompt_version  text          NOT NULL,
    content_hash    text          NOT NULL,
    result          jsonb         NOT NULL,
    confidence      real          NOT NULL,
    fallback        boolean       NOT NULL DEFAULT false,
    tokens_in       integer       NOT NULL DEFAULT 0,
    tokens_out      integer       NOT NULL DEFAULT 0,
    cost_usd        numeric(14,8) NOT NULL DEFAULT 0,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (track_id, analyzer, prompt_version, content_hash)
);
CREATE INDEX analyses_analyzer_idx ON analyses (analyzer, prompt_version);

-- Every LLM call, paid or failed: the cost ledger per item ('track:<id>' or 'text:<hash>').
CREATE TABLE llm_calls (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject         text          NOT NULL,
    analyzer        text          NOT NULL,
    prompt_version  text          NOT NULL,
    content_hash    text          NOT NULL,
    outcome         text          NOT NULL CHECK (outcome IN ('ok', 'invalid', 'error')),
    tokens_in       integer       NOT NULL DEFAULT 0,
    tokens_out      integer       NOT NULL DEFAULT 0,
    cost_usd        numeric(14,8) NOT NULL DEFAULT 0,
    duration_ms     double precision,
    created_at      timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX llm_calls_subject_idx ON llm_calls (subject);
CREATE INDEX llm_calls_created_idx ON llm_calls (created_at);

-- The daily token budget. A call reserves its worst case before it is sent (the reservation is
-- refused when used + reserved would pass the limit), then settles to its real usage.
CREATE TABLE llm_budget (
    day           date        PRIMARY KEY,
    token_limit   bigint      NOT NULL,
    reserved      bigint      NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    used          bigint      NOT NULL DEFAULT 0 CHECK (used >= 0),
    calls         integer     NOT NULL DEFAULT 0,
    refused       integer     NOT NULL DEFAULT 0,
    CHECK (used + reserved <= token_limit)
);

-- Where each scrape source stopped; written in the same transaction as the tracks it produced.
CREATE TABLE scrape_cursors (
    source        text        PRIMARY KEY,
    cursor        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    items_total   bigint      NOT NULL DEFAULT 0,
    last_status   text,
    last_error    text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Fitted distilled predictors (ridge / logistic over embedding + features), newest per name wins.
CREATE TABLE distilled_models (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text        NOT NULL,
    labels        integer     NOT NULL,
    mae_quality   double precision NOT NULL,
    acc_sentiment double precision NOT NULL,
    params        bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX distilled_models_name_idx ON distilled_models (name, id DESC);
