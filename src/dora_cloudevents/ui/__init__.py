"""The web UI: the DORA dashboard, its drill-downs and the live event monitor (server-rendered)."""
