"""Corpus recording: run many programs in sandboxes and keep their traces as training data."""

from __future__ import annotations
