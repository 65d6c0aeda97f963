"""Flows: each composes connectors, mappings and quality checks into the seven steps that
the one step runner (``hub.runner``) executes and the DAGs schedule."""
