"""When each open socket's sign-in is to be checked next (its session's idle or absolute
timeout, its token's expiry): a heap, so that thousands of sockets cost a log-time push each
and the bus's auth loop wakes at the earliest moment, not on every socket."""

from __future__ import annotations

import heapq
import itertools
from datetime import datetime
from typing import Generic, TypeVar

K = TypeVar("K")


class Lapses(Generic[K]):
    def __init__(self) -> None:
        self._at: dict[K, datetime] = {}
        self._heap: list[tuple[datetime, int, K]] = []  # may hold stale entries; `_at` is the truth
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._at)

    def set(self, key: K, moment: datetime) -> bool:
        """Check `key` at `moment`; True when that is now the earliest moment of all."""
        earliest = self.earliest()
        self._at[key] = moment
        heapq.heappush(self._heap, (moment, next(self._order), key))
        if len(self._heap) > 2 * len(self._at) + 64:  # sockets came and went: forget the stale entries
            self._heap = [(when, next(self._order), k) for k, when in self._at.items()]
            heapq.heapify(self._heap)
        return earliest is None or moment < earliest

    def drop(self, key: K) -> None:
        self._at.pop(key, None)

    def earliest(self) -> datetime | None:
        while self._heap and self._at.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def due(self, moment: datetime) -> list[K]:
        """The keys whose moment has come, forgotten (a check gives them their next one)."""
        keys = []
        while (earliest := self.earliest()) is not None and earliest <= moment:
            _, _, key = heapq.heappop(self._heap)
            del self._at[key]
            keys.append(key)
        return keys
