"""Streaming sessions: the GRU state of one stream, its position in the stream and the last
answer (for safe retries), behind one interface with two backends.

A closed session is kept, closed, for the TTL with its last answer, so that the closing
chunk is as safe to retry as any other; it no longer counts against `max_sessions`.

- `MemorySessionStore`: this process only (one worker); an injectable clock for tests.
- `RedisSessionStore` (service.redis_sessions): shared by workers and replicas.

A session's state is a value: a chunk reads it, computes the next state and commits it with
a compare-and-set on `seq`, so two workers can never both advance one session; the loser
re-reads. Within a process, `KeyedLocks` queues the requests of one session so they do not
compute in vain.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np


class SessionError(Exception):
    pass


class SessionNotFound(SessionError):
    pass


class SessionExpired(SessionError):
    pass


class SessionExists(SessionError):
    """A session with the id a client chose is already open (or recently closed)."""


class TooManySessions(SessionError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many open sessions; retry in {retry_after} s")
        self.retry_after = retry_after


class StoreUnavailable(Exception):
    """The session store cannot be reached (streaming answers 503)."""


@dataclass(frozen=True)
class SessionState:
    id: str
    model: str
    version: str
    t: int = 0  # time index of the next observation
    seq: int = -1  # number of the last chunk applied
    h: np.ndarray | None = None  # float32 GRU hidden state after the last observation
    # float64: what the state chain's filter carries (StateChain.filter), models with a chain
    belief: np.ndarray | None = None
    digest: str | None = None  # of the last chunk's observations
    response: bytes | None = None  # JSON of the last answer
    closed: bool = False  # the stream has ended: only a retry of its last chunk is answered


class SessionStore(Protocol):
    kind: str

    async def create(self, model: str, version: str, sid: str | None = None) -> SessionState:
        """Open a session, under `sid` if given (SessionExists if that id is taken);
        TooManySessions beyond `max_sessions` open ones."""
        ...

    async def get(self, sid: str) -> SessionState: ...

    async def commit(self, prev_seq: int, state: SessionState) -> bool:
        """Store `state` (closing the session if `state.closed`) if the stored session is
        still at `prev_seq`; False if another request advanced it first. Raises
        SessionNotFound or SessionExpired if it is gone."""
        ...

    async def touch(self, sid: str) -> None: ...

    async def close(self, sid: str) -> None:
        """Close a session (keeping its last answer for retries); closing a closed one does
        nothing."""
        ...

    async def count(self) -> int:
        """Open sessions (closed ones, kept for retries, are not counted)."""
        ...

    async def evictions(self) -> int: ...

    async def generation(self) -> int:
        """A counter of model reloads, shared by the processes using the store."""
        ...

    async def bump_generation(self) -> int: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


class MemorySessionStore:
    kind = "memory"

    def __init__(
        self, ttl: float, max_sessions: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: OrderedDict[str, tuple[SessionState, float]] = OrderedDict()
        self._closed: OrderedDict[str, tuple[SessionState, float]] = OrderedDict()
        self._expired: OrderedDict[str, None] = OrderedDict()  # recently expired ids
        self._evictions = 0
        self._generation = 0

    def _sweep(self) -> None:
        """Drop the sessions idle for longer than the TTL (oldest last_seen first)."""
        now = self.clock()
        for table, evicts in ((self._sessions, True), (self._closed, False)):
            while table:
                sid, (_, seen) = next(iter(table.items()))
                if now - seen <= self.ttl:
                    break
                del table[sid]
                self._expired[sid] = None
                self._evictions += evicts  # a closed session's expiry evicts nothing
        while len(self._expired) > 100_000:
            self._expired.popitem(last=False)

    def _put(self, state: SessionState) -> None:
        table = self._closed if state.closed else self._sessions
        self._sessions.pop(state.id, None)
        table[state.id] = (state, self.clock())
        table.move_to_end(state.id)

    async def create(self, model: str, version: str, sid: str | None = None) -> SessionState:
        self._sweep()
        if sid is not None and (sid in self._sessions or sid in self._closed):
            raise SessionExists(f"session {sid} exists")
        if len(self._sessions) >= self.max_sessions:
            _, seen = next(iter(self._sessions.values()))
            raise TooManySessions(max(1, int(self.ttl - (self.clock() - seen)) + 1))
        state = SessionState(sid or secrets.token_urlsafe(16), model, version)
        self._expired.pop(state.id, None)
        self._put(state)
        return state

    async def get(self, sid: str) -> SessionState:
        self._sweep()
        entry = self._sessions.get(sid) or self._closed.get(sid)
        if entry is None:
            if sid in self._expired:
                raise SessionExpired(f"session {sid} expired after {self.ttl:g} s idle")
            raise SessionNotFound(f"no session {sid}")
        return entry[0]

    async def commit(self, prev_seq: int, state: SessionState) -> bool:
        current = await self.get(state.id)
        if current.seq != prev_seq or current.closed:
            return False
        self._put(state)
        return True

    async def touch(self, sid: str) -> None:
        self._put(await self.get(sid))

    async def close(self, sid: str) -> None:
        state = await self.get(sid)  # raises the right error for an unknown or expired id
        if not state.closed:
            self._put(replace(state, closed=True))

    async def count(self) -> int:
        self._sweep()
        return len(self._sessions)

    async def evictions(self) -> int:
        self._sweep()
        return self._evictions

    async def generation(self) -> int:
        return self._generation

    async def bump_generation(self) -> int:
        self._generation += 1
        return self._generation

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks[key] if key in self._locks else (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
