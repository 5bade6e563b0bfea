"""api: the HTTPS surface (search, tracks, stats, health), framework-neutral."""
