"""Ingest: the HTTP endpoints that accept CloudEvents and CDEvents and store them durably."""
