"""Catalog entries of the sequence losses (token-level cross-entropy, chunked linear cross-entropy)."""

from __future__ import annotations

from harness.model import LossSpec

SEQUENCE: tuple[LossSpec, ...] = ()
