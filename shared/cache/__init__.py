"""Cache port and the in-process LRU adapter (Redis adapter arrives beside it)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Protocol

__all__ = ["Cache", "MemoryCache"]


class Cache(Protocol):
    def get(self, key: str) -> Any | None: ...

    def set(self, key: str, value: Any, ttl_s: float | None = None) -> None: ...

    def delete(self, key: str) -> None: ...


class MemoryCache:
    """Thread-safe LRU with per-entry TTL; counts hits and misses for /stats."""

    def __init__(self, max_entries: int = 2048) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._data.get(key)
            if item is None or item[0] < time.monotonic():
                if item is not None:
                    del self._data[key]
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return item[1]

    def set(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        if self.max_entries <= 0:
            return
        expires = time.monotonic() + ttl_s if ttl_s is not None else float("inf")
        with self._lock:
            self._data[key] = (expires, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)
