-- contentfn schema v8: stream quotas, idle expiry and redacted errors.

-- Who registered a stream: quotas count active streams per owner (the API key's name once keys have
-- names; one shared owner until then).
ALTER TABLE streams ADD COLUMN owner text NOT NULL DEFAULT 'default';

-- last_error holds a redacted message only (never the URL nor FFmpeg's text, which quotes it);
-- last_error_code says which failure it was, for callers that branch on it.
ALTER TABLE streams ADD COLUMN last_error_code text;

-- failed: the source can never be read as registered (refused address, playlist, frames over the
-- pixel cap); expired: no frame for longer than the idle limit. Both free their quota.
ALTER TABLE streams DROP CONSTRAINT streams_status_check;
ALTER TABLE streams ADD CONSTRAINT streams_status_check
    CHECK (status IN ('pending', 'running', 'retrying', 'ended', 'stopped', 'failed', 'expired'));

CREATE INDEX streams_owner_active_idx ON streams (owner) WHERE status IN ('pending', 'running', 'retrying');
