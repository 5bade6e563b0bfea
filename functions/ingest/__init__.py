"""ingest: track files from a bucket into the store."""
