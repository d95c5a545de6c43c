"""Kubernetes timestamps (RFC 3339) and epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(text: str | None) -> float | None:
    """Epoch seconds of a Kubernetes timestamp (with or without fractional seconds)."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def format_time(epoch: float) -> str:
    """A Kubernetes timestamp (RFC 3339, seconds), as conditions and events carry."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_precise(epoch: float) -> str:
    """A timestamp with microseconds, for decision state kept in status (cooldowns, steps)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
