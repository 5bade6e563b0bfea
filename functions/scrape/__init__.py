"""scrape: scheduled pulls of new tracks from configured sources."""
