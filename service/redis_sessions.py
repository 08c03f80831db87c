"""Sessions in Redis, shared by every worker and replica (`NLD_SESSION_STORE=redis://...`).

One hash per session holds the model, version, `t`, `seq`, the GRU state as raw float32
bytes with its shape, the state chain's belief (float64 bytes, models with a chain), the
last answer, whether it is closed, and the last-seen time; Redis expires it after the
TTL. A sorted set of open session ids by last use enforces the cap, and a short-lived
tombstone per id tells an expired session from an unknown one. Creating, committing and touching are
Lua scripts, so the check of `seq` and the write are one atomic step. Nothing is pickled.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from service.sessions import (
    SessionExists,
    SessionExpired,
    SessionNotFound,
    SessionState,
    StoreUnavailable,
    TooManySessions,
)

T = TypeVar("T")
Arg = bytes | str | int | float

# KEYS: index, session, tombstone, evictions. ARGV: now, ttl s, cap, sid, model, version,
# tombstone ttl s. Returns {1, 0} when created, {0, last use of the oldest} when full,
# {-1, 0} when a session with that id exists (open or closed).
CREATE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, '0'} end
local gone = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if gone > 0 then redis.call('INCRBY', KEYS[4], gone) end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, oldest[2]}
end
redis.call('HSET', KEYS[2], 'model', ARGV[5], 'version', ARGV[6], 't', '0', 'seq', '-1',
           'seen', ARGV[1])
redis.call('PEXPIRE', KEYS[2], math.floor(tonumber(ARGV[2]) * 1000))
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('SET', KEYS[3], '1', 'EX', ARGV[7])
return {1, '0'}
"""

# KEYS: session, index. ARGV: expected seq, seq, t, h, h shape, digest, response, ttl ms,
# now, sid, belief, closed ('1' closes the session: it leaves the index of open ones).
# Returns 1 when stored, 0 when another request advanced (or closed) the session, -1 if gone.
COMMIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HGET', KEYS[1], 'seq') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'closed') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'seq', ARGV[2], 't', ARGV[3], 'h', ARGV[4], 'hshape', ARGV[5],
           'digest', ARGV[6], 'response', ARGV[7], 'seen', ARGV[9], 'belief', ARGV[11],
           'closed', ARGV[12])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
if ARGV[12] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[10])
else
  redis.call('ZADD', KEYS[2], ARGV[9], ARGV[10])
end
return 1
"""

# KEYS: session, index. ARGV: ttl ms, now, sid. Never recreates an expired session, nor
# counts a closed one as open again.
TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], 'seen', ARGV[2])
if redis.call('HGET', KEYS[1], 'closed') ~= '1' then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
end
return 1
"""

# KEYS: session, index, tombstone. ARGV: sid. Closes the session, keeping it (and its last
# answer) until it expires. Returns 1 when closed (or already closed), 0 when the session
# had expired (its tombstone is kept), -1 when there was no such session.
CLOSE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'closed', '1')
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
return -1
"""

TOMBSTONE_SECONDS = 86_400


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisSessionStore:
    kind = "redis"

    def __init__(
        self,
        url: str,
        ttl: float,
        max_sessions: int,
        *,
        timeout: float = 2.0,
        prefix: str = "nld:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = redacted(url)
        self.ttl = ttl
        self.max_sessions = max_sessions
        self.prefix = prefix
        self.clock = clock
        self.redis = aioredis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=False
        )
        self._create = self.redis.register_script(CREATE)
        self._commit = self.redis.register_script(COMMIT)
        self._touch = self.redis.register_script(TOUCH)
        self._close = self.redis.register_script(CLOSE)

    def _key(self, kind: str, sid: str = "") -> str:
        return f"{self.prefix}{kind}:{sid}" if sid else f"{self.prefix}{kind}"

    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        try:
            return await op()
        except ResponseError:
            raise  # a bug of ours (a script error), not an outage
        except (RedisError, OSError) as e:
            raise StoreUnavailable(f"session store {self.url} is unreachable ({e})") from None

    async def create(self, model: str, version: str, sid: str | None = None) -> SessionState:
        sid = sid or secrets.token_urlsafe(16)
        now = self.clock()
        keys = [
            self._key("sessions"),
            self._key("session", sid),
            self._key("tomb", sid),
            self._key("evictions"),
        ]
        args: list[Arg] = [now, self.ttl, self.max_sessions, sid, model, version, TOMBSTONE_SECONDS]
        created, oldest = await self._call(lambda: self._create(keys=keys, args=args))
        if created == -1:
            raise SessionExists(f"session {sid} exists")
        if not created:
            raise TooManySessions(max(1, int(self.ttl - (now - float(oldest))) + 1))
        return SessionState(sid, model, version)

    async def get(self, sid: str) -> SessionState:
        async def read() -> list[Any]:
            async with self.redis.pipeline(transaction=False) as p:
                p.hgetall(self._key("session", sid))
                p.exists(self._key("tomb", sid))
                return await p.execute()

        fields, tomb = await self._call(read)
        if not fields:
            raise self._gone(sid, expired=bool(tomb))
        f = {k.decode(): v for k, v in fields.items()}
        h = None
        if f.get("h"):
            shape = tuple(int(n) for n in f["hshape"].decode().split(","))
            h = np.frombuffer(f["h"], dtype=np.float32).reshape(shape).copy()
        return SessionState(
            id=sid,
            model=f["model"].decode(),
            version=f["version"].decode(),
            t=int(f["t"]),
            seq=int(f["seq"]),
            h=h,
            belief=np.frombuffer(f["belief"], dtype=np.float64).copy() if f.get("belief") else None,
            digest=f["digest"].decode() if f.get("digest") else None,
            response=f.get("response") or None,
            closed=f.get("closed") == b"1",
        )

    async def commit(self, prev_seq: int, state: SessionState) -> bool:
        h = np.ascontiguousarray(state.h, dtype=np.float32) if state.h is not None else None
        keys = [self._key("session", state.id), self._key("sessions")]
        args: list[Arg] = [
            str(prev_seq),
            str(state.seq),
            str(state.t),
            h.tobytes() if h is not None else b"",
            ",".join(map(str, h.shape)) if h is not None else "",
            state.digest or "",
            state.response or b"",
            int(self.ttl * 1000),
            self.clock(),
            state.id,
            b"" if state.belief is None else np.asarray(state.belief, np.float64).tobytes(),
            "1" if state.closed else "0",
        ]
        done = await self._call(lambda: self._commit(keys=keys, args=args))
        if done == -1:
            await self.get(state.id)  # raises expired or not found
            raise SessionNotFound(f"no session {state.id}")
        return bool(done)

    async def touch(self, sid: str) -> None:
        keys = [self._key("session", sid), self._key("sessions")]
        args: list[Arg] = [int(self.ttl * 1000), self.clock(), sid]
        await self._call(lambda: self._touch(keys=keys, args=args))

    async def close(self, sid: str) -> None:
        keys = [self._key("session", sid), self._key("sessions"), self._key("tomb", sid)]
        closed = await self._call(lambda: self._close(keys=keys, args=[sid]))
        if closed != 1:
            raise self._gone(sid, expired=closed == 0)

    def _gone(self, sid: str, *, expired: bool) -> SessionExpired | SessionNotFound:
        if expired:
            return SessionExpired(f"session {sid} expired after {self.ttl:g} s idle")
        return SessionNotFound(f"no session {sid}")

    async def count(self) -> int:
        now = self.clock()
        key = self._key("sessions")
        return int(await self._call(lambda: self.redis.zcount(key, now - self.ttl, "+inf")))

    async def evictions(self) -> int:
        value = await self._call(lambda: self.redis.get(self._key("evictions")))
        return int(value or 0)

    async def generation(self) -> int:
        value = await self._call(lambda: self.redis.get(self._key("generation")))
        return int(value or 0)

    async def bump_generation(self) -> int:
        return int(await self._call(lambda: self.redis.incr(self._key("generation"))))

    async def ping(self) -> None:
        await self._call(self.redis.ping)

    async def aclose(self) -> None:
        await self.redis.aclose()
