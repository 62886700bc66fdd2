"""``dora-ce demo``: a realistic sample history, sent through the real ingest path."""
