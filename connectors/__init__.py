"""Connectors: one module per external system, all implementing ``hub.types.Connector``.

They import only ``hub.errors`` and ``hub.types``; one HTTP helper (``connectors.http``)
gives them timeouts, retries with backoff that honours Retry-After, and error classes.
"""
