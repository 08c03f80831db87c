"""Typed clients of the nld service (httpx only: no torch on the client side).

    NLDServiceError            base; carries the request (and the response, if there was one)
    ├── TransportError         the service could not be reached (after retries)
    ├── NotReady               `wait_ready`: the service was not ready within the timeout
    └── APIError               the service answered with an error status
        ├── Unauthorized       401: missing or wrong API key
        ├── NotFound           404: no such model or session (or the session expired)
        ├── Conflict           409: seq out of order, or the model changed under a session
        ├── PayloadTooLarge    413
        ├── InvalidRequest     422: bad observations, dimension, values or a cap
        ├── TooManySessions    429: `retry_after` seconds
        └── Unavailable        503: a model still loading, or the session store down

Both clients accept an injected `httpx.Client` / `httpx.AsyncClient` (a Starlette
`TestClient` is one), so they can run in process against the app. Idempotent calls (GET,
DELETE, the landscape's energy, seeded samples, and stream chunks sent with a `seq`, which
the service deduplicates) are retried on transport errors (a refused connection while the
service starts included) and 503, waiting as Retry-After says, else with exponential
backoff. `stream_segment` names its session and numbers its chunks, so every chunk of a
stream, the first and the last included, is safe to retry. `wait_ready(timeout)` waits for
a service that is starting.
"""

from service.client.asynchronous import AsyncNLDClient
from service.client.errors import (
    APIError,
    Conflict,
    InvalidRequest,
    NLDServiceError,
    NotFound,
    NotReady,
    PayloadTooLarge,
    TooManySessions,
    TransportError,
    Unauthorized,
    Unavailable,
)
from service.client.sync import NLDClient

__all__ = [
    "APIError",
    "AsyncNLDClient",
    "Conflict",
    "InvalidRequest",
    "NLDClient",
    "NLDServiceError",
    "NotFound",
    "NotReady",
    "PayloadTooLarge",
    "TooManySessions",
    "TransportError",
    "Unauthorized",
    "Unavailable",
]
