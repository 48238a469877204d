"""HTTP: REST routes for scripts and the web client, health, metrics, and the web client's files."""
