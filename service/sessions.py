"""Streaming sessions held in this process: the GRU state of one stream, its position in the
stream, and the last answer (for safe retries).

A session is created by its first chunk, advanced by one chunk at a time under its own
lock, closed by `end` or DELETE, and expires after `ttl` seconds idle. The clock is
injectable so tests can move time.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


class SessionError(Exception):
    pass


class SessionNotFound(SessionError):
    pass


class SessionExpired(SessionError):
    pass


class TooManySessions(SessionError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many open sessions; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Session:
    id: str
    model: str
    version: str
    last_seen: float
    h: Tensor | None = None  # GRU hidden state after the last observation
    t: int = 0  # time index of the next observation
    seq: int = -1  # number of the last chunk applied
    last_response: dict[str, Any] | None = None
    closed: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class MemorySessionStore:
    def __init__(
        self, ttl: float, max_sessions: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # oldest last_seen first
        self._expired: OrderedDict[str, None] = OrderedDict()  # recently expired ids
        self.evictions = 0

    def __len__(self) -> int:
        self.sweep()
        return len(self._sessions)

    def sweep(self) -> None:
        """Drop the sessions idle for longer than the TTL."""
        now = self.clock()
        while self._sessions:
            sid, s = next(iter(self._sessions.items()))
            if now - s.last_seen <= self.ttl:
                break
            del self._sessions[sid]
            s.closed = True
            self._expired[sid] = None
            self.evictions += 1
            while len(self._expired) > 100_000:
                self._expired.popitem(last=False)

    def create(self, model: str, version: str) -> Session:
        self.sweep()
        if len(self._sessions) >= self.max_sessions:
            oldest = next(iter(self._sessions.values()))
            wait = max(1, int(self.ttl - (self.clock() - oldest.last_seen)) + 1)
            raise TooManySessions(wait)
        sid = secrets.token_urlsafe(16)
        s = Session(sid, model, version, last_seen=self.clock())
        self._sessions[sid] = s
        return s

    def get(self, sid: str) -> Session:
        self.sweep()
        s = self._sessions.get(sid)
        if s is None:
            if sid in self._expired:
                raise SessionExpired(f"session {sid} expired after {self.ttl:g} s idle")
            raise SessionNotFound(f"no session {sid}")
        return s

    def touch(self, s: Session) -> None:
        s.last_seen = self.clock()
        if s.id in self._sessions:
            self._sessions.move_to_end(s.id)

    def close(self, sid: str) -> None:
        s = self._sessions.pop(sid, None)
        if s is None:
            self.get(sid)  # raises the right error for an unknown or expired id
        else:
            s.closed = True
