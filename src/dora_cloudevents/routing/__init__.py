"""Routing: which transformers see which raw CloudEvent, and the router that applies them."""
