"""The hub's operations console: a FastAPI app with server-rendered pages, served by the
``hub_console`` Airflow plugin inside Airflow's API server."""
