"""Carrier codes per platform (``carriers.yaml`` beside this module): hub carrier name →
the code the platform's shipment call takes. Read by a tiny loader of the file's plain two-level
form (connectors import no YAML library); anything else in the file is a clear error."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from hub.errors import ConfigurationError

FILE = Path(__file__).with_name("carriers.yaml")


@lru_cache(maxsize=1)
def table() -> dict[str, dict[str, str]]:
    """{carrier name: {platform: code}} from carriers.yaml."""
    out: dict[str, dict[str, str]] = {}
    current: str | None = None
    for n, raw in enumerate(FILE.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        key, sep, value = line.strip().partition(":")
        if not sep:
            raise ConfigurationError(f"{FILE}:{n}: expected 'name:' or '  platform: code', got {raw!r}")
        value = value.strip().strip('"').strip("'")
        if not raw.startswith(" "):
            if value:
                raise ConfigurationError(f"{FILE}:{n}: a carrier line holds only its name")
            current = key.strip()
            out[current] = {}
        elif current is None or not value:
            raise ConfigurationError(f"{FILE}:{n}: a platform code outside a carrier, or empty")
        else:
            out[current][key.strip()] = value
    return out


def code(platform: str, carrier: str) -> str | None:
    """The platform's code for the hub carrier name, None when carriers.yaml has none."""
    return table().get((carrier or "").strip(), {}).get(platform)


def unknown(platform: str, carrier: str) -> str:
    """The failure text for a carrier the platform has no code for."""
    return (f"carrier {carrier!r} has no {platform} code in connectors/shops/carriers.yaml; add the platform's "
            f"code there (from its logistics company list)")
