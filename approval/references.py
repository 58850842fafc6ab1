"""The unguessable, single-use reference a link carries (never the callback token itself)."""

from __future__ import annotations

import hashlib
import re
import secrets

# 32 random bytes, URL-safe base64 without padding: 43 characters, 256 bits of entropy.
REFERENCE_BYTES = 32
REFERENCE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_reference() -> str:
    return secrets.token_urlsafe(REFERENCE_BYTES)


def new_form_token() -> str:
    """Embedded in the confirmation page's form: a POST without it did not come from that page."""
    return secrets.token_urlsafe(24)


def is_well_formed(reference: object) -> bool:
    return isinstance(reference, str) and REFERENCE_PATTERN.fullmatch(reference) is not None


def reference_key(reference: str) -> str:
    """The table stores only a hash of the reference: read access to the table does not yield working links."""
    return hashlib.sha256(f"approval-reference:{reference}".encode()).hexdigest()
