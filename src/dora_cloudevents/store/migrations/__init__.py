"""Alembic migration scripts for the dora-cloudevents schema."""
