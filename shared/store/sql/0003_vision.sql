-- contentfn schema v3: images, registered video streams, detections for both.

-- One row per distinct image content (sha256 of the bytes): the same photo uploaded twice, under
-- any key, is detected once. A refused image keeps its row with the reason.
CREATE TABLE images (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    content_hash  text        NOT NULL UNIQUE,
    bucket        text        NOT NULL,
    key           text        NOT NULL,
    bytes         bigint      NOT NULL,
    format        text,
    width         integer,
    height        integer,
    status        text        NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'done', 'rejected')),
    reason        text,
    model         text,
    detected_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX images_status_idx ON images (status);

CREATE TABLE streams (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url               text        NOT NULL,
    fps               real        NOT NULL CHECK (fps > 0),
    keyframes_only    boolean     NOT NULL DEFAULT false,
    model             text,
    status            text        NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'retrying', 'ended', 'stopped')),
    lease_owner       text,
    lease_expires_at  timestamptz,
    last_error        text,
    frames_done       bigint      NOT NULL DEFAULT 0,
    frames_dropped    bigint      NOT NULL DEFAULT 0,
    last_frame_ts     double precision,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX streams_lease_idx ON streams (status, lease_expires_at);

-- A detection belongs to an image, or to a stream frame: stream_id + frame_ts, seconds into the file
-- for a file source, Unix time of arrival for a live one.
-- Rows of one (image, model) are replaced as a whole, so a redelivered job never duplicates them.
CREATE TABLE detections (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    image_id    bigint      REFERENCES images (id) ON DELETE CASCADE,
    stream_id   bigint      REFERENCES streams (id) ON DELETE CASCADE,
    frame_ts    double precision,
    model       text        NOT NULL,
    class_id    integer     NOT NULL,
    label       text        NOT NULL,
    score       real        NOT NULL,
    x1          real        NOT NULL,
    y1          real        NOT NULL,
    x2          real        NOT NULL,
    y2          real        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((image_id IS NOT NULL AND stream_id IS NULL)
        OR (image_id IS NULL AND stream_id IS NOT NULL AND frame_ts IS NOT NULL))
);
CREATE INDEX detections_image_idx ON detections (image_id, model) WHERE image_id IS NOT NULL;
CREATE INDEX detections_stream_idx ON detections (stream_id, frame_ts) WHERE stream_id IS NOT NULL;
