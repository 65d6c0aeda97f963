"""Buyer personal data at rest: a consignee the platform decrypted for us is sealed with
Airflow's own Fernet key (``[core] fernet_key``, the key that encrypts connections) before the
hub stores it, and opened only where it is needed. Without a key there is no sealing, so the
decryption is refused rather than stored in the clear."""
from __future__ import annotations

from hub.errors import ConfigurationError

PREFIX = "fernet:"


def _fernet():
    from airflow.models.crypto import get_fernet

    fernet = get_fernet()
    if not getattr(fernet, "is_encrypted", False):
        raise ConfigurationError(
            "decrypted buyer data must be encrypted at rest and Airflow has no fernet key: set "
            "AIRFLOW__CORE__FERNET_KEY (or [core] fernet_key), or leave the connection's decrypt_pii false")
    return fernet


def require_key() -> None:
    """Refuse a decrypting connection now when nothing could seal what it decrypts."""
    _fernet()


def seal(text: str) -> str:
    """``fernet:<token>``: what the hub stores in place of plain personal data."""
    return PREFIX + _fernet().encrypt(text.encode("utf-8")).decode("ascii")


def is_sealed(text: str | None) -> bool:
    return bool(text) and str(text).startswith(PREFIX)


def open_sealed(text: str) -> str:
    """The plain text of a sealed value (a value not sealed is returned as it is)."""
    if not is_sealed(text):
        return text
    return _fernet().decrypt(text[len(PREFIX):].encode("ascii")).decode("utf-8")
