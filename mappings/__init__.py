"""Declarative mappings: YAML specs per system and entity, and the one engine that applies them."""
