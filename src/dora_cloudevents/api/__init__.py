"""The read API: health, raw event monitor and (later) DORA metrics, as JSON over HTTP."""
