"""Metrics: the projector that derives entities from CDEvents, and the DORA metrics over them."""
