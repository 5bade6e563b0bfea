-- contentfn schema v9: named API keys with scopes, per-key quotas, and an audit of writes.

-- A key is stored as the SHA-256 of its secret, never the secret. During a rotation the previous
-- secret's digest stays valid until previous_expires_at, so clients switch without downtime.
-- NULL quotas mean the defaults from settings.
CREATE TABLE api_keys (
    name                  text        PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    scopes                text[]      NOT NULL CHECK (scopes <@ ARRAY['read', 'write', 'admin']::text[]
                                                      AND cardinality(scopes) > 0),
    secret_sha256         bytea       NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    previous_sha256       bytea       UNIQUE CHECK (length(previous_sha256) = 32),
    previous_expires_at   timestamptz,
    requests_per_minute   integer     CHECK (requests_per_minute >= 0),
    llm_per_day           integer     CHECK (llm_per_day >= 0),
    max_streams           integer     CHECK (max_streams >= 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    rotated_at            timestamptz,
    revoked_at            timestamptz
);

-- Fixed-window counters of the quotas when no Redis is configured: one row per key, quota and
-- window, shared by every API process through the database.
CREATE TABLE api_quota_counters (
    key_name      text        NOT NULL,
    quota         text        NOT NULL,
    window_start  timestamptz NOT NULL,
    used          integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (key_name, quota, window_start)
);
CREATE INDEX api_quota_counters_window_idx ON api_quota_counters (window_start);

-- Every write and admin action: who (key name), what (method and route), on what (target id or
-- path), when, and how it ended (HTTP status).
CREATE TABLE api_audit (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    key_name    text        NOT NULL,
    scope       text        NOT NULL,
    method      text        NOT NULL,
    route       text        NOT NULL,
    target      text,
    status      integer     NOT NULL
);
CREATE INDEX api_audit_at_idx ON api_audit (at);
CREATE INDEX api_audit_key_idx ON api_audit (key_name, at);
