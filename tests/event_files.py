"""The one loader of ``events/`` payloads for every test tier."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"

__all__ = ["EVENTS_DIR", "event_names", "load_event"]


def event_names() -> list[str]:
    return sorted(p.name for p in EVENTS_DIR.glob("*.json"))


def load_event(name: str) -> dict[str, Any]:
    """A fresh, mutable copy of ``events/<name>`` (tests may edit it freely)."""
    return copy.deepcopy(json.loads((EVENTS_DIR / name).read_text(encoding="utf-8")))
