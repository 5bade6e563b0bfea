"""enrich: algorithmic lyric features and Spotify-compatible metadata for a track."""
