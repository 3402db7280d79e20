"""Queue messages signed by p2c: an HMAC-SHA256 over the canonical envelope.

Whoever can write a queue (the deploying user has Queue Data Contributor) could otherwise
tell the queue function what the truth is: any version, `force`, `replay`. A message is
applied only when its `sig` is the HMAC, under `P2C_MESSAGE_SIGNING_KEY`, of everything
else in it (flow, records with their flags, sent), so a message p2c did not write, or
one changed on the way, is refused before anything is read or written.

Canonical form: the JSON parsed and dumped again with sorted keys and no spaces, so the
signer and the checker agree whatever the serializer's field order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from typing import Any

from pydantic import SecretStr

from p2c_core.envelope import MAX_MESSAGE_BYTES, Envelope

SIGNATURE = "sig"
# Domain separation: this key signs queue envelopes of this format, nothing else.
_CONTEXT = b"p2c-envelope-v2\n"

_ephemeral: bytes | None = None
_ephemeral_lock = threading.Lock()


def key_bytes(key: SecretStr | None) -> bytes:
    """The signing key; without one (only allowed with P2C_AUTH_MODE=none, the sandbox),
    a random key for this process, so nothing unsigned is ever accepted."""
    global _ephemeral
    if key is not None:
        return key.get_secret_value().encode()
    with _ephemeral_lock:
        if _ephemeral is None:
            _ephemeral = secrets.token_bytes(32)
        return _ephemeral


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _mac(key: bytes, data: dict[str, Any]) -> str:
    return hmac.new(key, _CONTEXT + _canonical(data), hashlib.sha256).hexdigest()


def seal(envelope: Envelope, key: bytes) -> bytes:
    """The message body for the queue: the envelope with its signature."""
    text = envelope.to_json()
    sig = _mac(key, json.loads(text))
    return f'{text[:-1]},"{SIGNATURE}":"{sig}"}}'.encode()


def problem(body: bytes | str, key: bytes) -> str | None:
    """None when the message carries a valid signature, else why it is refused."""
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_MESSAGE_BYTES:
        return "message is over the 64 KB queue limit"
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return "message is not JSON"
    if not isinstance(data, dict):
        return "message is not a JSON object"
    sig = data.pop(SIGNATURE, None)
    if sig is None:
        return "message is not signed (written before signing, or not by p2c)"
    if not isinstance(sig, str) or not hmac.compare_digest(sig.encode(), _mac(key, data).encode()):
        return "message signature does not match (changed, forged, or signed with another key)"
    return None
