"""AMI's md5 login: the key the server expects for a challenge. Pure, shared by the `login`
step and the console so both prove the secret the same way."""

from __future__ import annotations


def md5_key(challenge: str, secret: str) -> str:
    """Asterisk checks md5(challenge + secret) in hex; the secret never crosses the wire."""
    import hashlib  # only md5 logins need it: kept out of every run's start-up

    return hashlib.md5((challenge + secret).encode("utf-8", "surrogateescape")).hexdigest()
