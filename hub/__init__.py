"""The hub's runtime core: canonical model, store, run log, quarantine, step runner.

Nothing here imports the layers above it (connectors, mappings, quality, flows, dags).
"""
