-- contentfn schema v4: GPU pipeline processes report what they drain.

-- One row per running GPU pipeline process, refreshed every few seconds. img_per_s is the rate it
-- wrote images at while a backlog kept it busy (NULL until it has been busy long enough to tell):
-- admission counts on the fleet's measured rate instead of a configured guess.
CREATE TABLE gpu_workers (
    id          text        PRIMARY KEY,  -- host:pid:nonce
    host        text        NOT NULL,     -- one GPU instance; its processes' rates add up
    provider    text        NOT NULL,
    model       text        NOT NULL,
    max_batch   integer     NOT NULL,
    img_per_s   real        CHECK (img_per_s >= 0),
    busy_s      real        NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gpu_workers_updated_idx ON gpu_workers (updated_at);
