"""dora-cloudevents: CloudEvents in, CDEvents through, DORA metrics out."""

__version__ = "0.1.0"
