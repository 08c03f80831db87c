"""The errors the clients raise, one class per status the service answers with."""

from __future__ import annotations

from typing import Any

import httpx


class NLDServiceError(Exception):
    def __init__(
        self, message: str, request: httpx.Request, response: httpx.Response | None = None
    ) -> None:
        super().__init__(message)
        self.request = request
        self.response = response


class TransportError(NLDServiceError):
    pass


class NotReady(NLDServiceError):
    pass


class APIError(NLDServiceError):
    status_code: int
    detail: Any

    def __init__(self, request: httpx.Request, response: httpx.Response) -> None:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        self.status_code = response.status_code
        self.detail = detail
        super().__init__(
            f"{request.method} {request.url.path}: {response.status_code} {detail}",
            request,
            response,
        )


class Unauthorized(APIError):
    pass


class NotFound(APIError):
    pass


class Conflict(APIError):
    pass


class PayloadTooLarge(APIError):
    pass


class InvalidRequest(APIError):
    pass


class TooManySessions(APIError):
    @property
    def retry_after(self) -> int | None:
        assert self.response is not None
        value = self.response.headers.get("Retry-After")
        return int(value) if value and value.isdigit() else None


class Unavailable(APIError):
    pass


_BY_STATUS: dict[int, type[APIError]] = {
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: TooManySessions,
    503: Unavailable,
}


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    raise _BY_STATUS.get(response.status_code, APIError)(response.request, response)
