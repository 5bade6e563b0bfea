-- contentfn schema v6: full-text search over tracks (keyword and hybrid search), browse indexes.

-- What keyword search matches: title weighs most, then artist, then lyrics, so a query naming a
-- song finds that song first. 'english' stems (sailing ~ sail) and drops stop words.
CREATE FUNCTION track_search_tsv(artist text, title text, lyrics text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN setweight(to_tsvector('english'::regconfig, title), 'A')
    || setweight(to_tsvector('english'::regconfig, artist), 'B')
    || setweight(to_tsvector('english'::regconfig, lyrics), 'D');

-- Filled by the embed stage beside the vectors, not by the ingest COPY: computing it per row in
-- the bulk upsert (a generated column) cut upsert throughput about fourfold. NULL = not indexed
-- yet; the upsert resets it when a track's content changes, and the changed track is re-embedded.
ALTER TABLE tracks ADD COLUMN search_tsv tsvector;
UPDATE tracks SET search_tsv = track_search_tsv(artist, title, lyrics);
CREATE INDEX tracks_search_tsv_idx ON tracks USING gin (search_tsv);

-- Browse: keyset pages by time, in either direction.
CREATE INDEX tracks_created_idx ON tracks (created_at, id);
