"""analyze: a track (job) or ad-hoc text (POST /analyze) → a profile, at the lowest cost that meets the confidence asked."""
