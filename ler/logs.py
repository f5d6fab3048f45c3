"""Logging set-up: one line per event, never personal data (callers log ids, not names or e-mails)."""

from __future__ import annotations

import logging
import sys


def configure(level: str = "INFO") -> None:
    """Plain, timestamped logs on stderr for every process of the platform."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "faust", "mode", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
