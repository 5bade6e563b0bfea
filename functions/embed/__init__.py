"""embed: sentence vectors for tracks, written to pgvector."""
