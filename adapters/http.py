"""HTTP backends on httpx: each request runs through the backend's policies, classified.

The adapter decides what the retry policy may retry, so the policy stays generic:

* connection failures, timeouts and the statuses in ``transient_statuses`` (429, 502,
  503, 504) raise :class:`HttpTransientError`, a :class:`TransientError` carrying the
  status and the server's ``Retry-After`` as ``retry_after_s``;
* any other status >= 400 raises :class:`HttpError`, which is not retried; a 4xx raises
  its subclass :class:`HttpClientError`, which breakers count as a healthy answer;
* a request that is not idempotent (``POST``, ``PATCH``, without an ``Idempotency-Key``
  header or ``idempotent=True``) runs through the pipeline without its retry policies
  and fails with :class:`HttpError` only, so neither this pipeline nor a caller's own
  retry sends it twice. The toolkit's timeout still raises ``DeadlineExceeded``.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Final, TypedDict, Unpack

import httpx

from adapters._pipelines import resolve_pipeline, without_retry
from resilience.errors import ClientError, ResilienceError, TransientError
from resilience.pipeline import CallContext

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from resilience.pipeline import Pipeline, Policy

#: Methods RFC 9110 defines as idempotent: sending them twice has the effect of once.
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
#: The header that makes a non-idempotent request safe to repeat (the server deduplicates).
IDEMPOTENCY_KEY: Final = "Idempotency-Key"
#: Statuses that say "try again later" rather than "this request is wrong".
TRANSIENT_STATUSES: Final = frozenset({429, 502, 503, 504})

# Transport failures worth another attempt: the network, not the request, went wrong.
_TRANSIENT_TRANSPORT: Final = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


_NOT_IDEMPOTENT: Final = (
    "{method} is not idempotent (send an Idempotency-Key header or pass idempotent=True)"
)


class HttpError(ResilienceError):
    """A failed request that is not retried: a client error, or one not to send twice.

    ``status`` is ``None`` when no response arrived; ``retry_after_s`` is the server's hint
    even when this adapter does not retry (a caller may reschedule the work).
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        status: int | None = None,
        retry_after_s: float | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.status = status
        self.retry_after_s = retry_after_s
        self.response = response


class HttpClientError(HttpError, ClientError):
    """A 4xx answer: the request is wrong and the backend is fine (breakers count a success)."""


class HttpTransientError(HttpError, TransientError):
    """A failure of an idempotent request worth retrying, after ``retry_after_s`` if set."""


class RequestOptions(TypedDict, total=False):
    """What the shorthand methods pass to ``httpx.AsyncClient.build_request``."""

    headers: Mapping[str, str]
    params: Mapping[str, str | int | float | bool]
    json: object
    content: bytes | str


class HttpBackend:
    """Requests on an ``httpx.AsyncClient`` through the backend's pipeline.

    The client stays the caller's (open and close it with ``async with``). Create it with
    ``timeout=None`` to let the pipeline's timeout, on the event loop's clock, be the
    only per-attempt limit.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        backend: str,
        policy: Policy | None = None,
        transient_statuses: Collection[int] = TRANSIENT_STATUSES,
    ) -> None:
        self.client = client
        self.backend = backend
        self._pipeline = resolve_pipeline(backend, policy)
        self._once = without_retry(self._pipeline)
        self._transient_statuses = frozenset(transient_statuses)

    async def send(
        self, request: httpx.Request, *, idempotent: bool | None = None
    ) -> httpx.Response:
        """Send ``request`` and return its response (status < 400), read in full.

        ``idempotent`` overrides what the method and the ``Idempotency-Key`` header say.
        """
        if idempotent is None:
            idempotent = request.method in IDEMPOTENT_METHODS or IDEMPOTENCY_KEY in request.headers
        pipeline: Pipeline = self._pipeline if idempotent else self._once
        attempt = functools.partial(self._attempt, request, retryable=idempotent)
        return await pipeline.run(attempt, CallContext(self.backend))

    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        idempotent: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> httpx.Response:
        """Build a request on the client (its base URL, headers) and :meth:`send` it."""
        request = self.client.build_request(method, url, **options)
        return await self.send(request, idempotent=idempotent)

    async def get(
        self,
        url: httpx.URL | str,
        *,
        idempotent: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> httpx.Response:
        """``GET url``."""
        return await self.request("GET", url, idempotent=idempotent, **options)

    async def post(
        self,
        url: httpx.URL | str,
        *,
        idempotent: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> httpx.Response:
        """``POST url``: sent at most once unless keyed or marked idempotent."""
        return await self.request("POST", url, idempotent=idempotent, **options)

    async def put(
        self,
        url: httpx.URL | str,
        *,
        idempotent: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> httpx.Response:
        """``PUT url``."""
        return await self.request("PUT", url, idempotent=idempotent, **options)

    async def patch(
        self,
        url: httpx.URL | str,
        *,
        idempotent: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> httpx.Response:
        """``PATCH url``: sent at most once unless keyed or marked idempotent."""
        return await self.request("PATCH", url, idempotent=idempotent, **options)

    async def delete(
        self,
        url: httpx.URL | str,
        *,
        idempotent: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> httpx.Response:
        """``DELETE url``."""
        return await self.request("DELETE", url, idempotent=idempotent, **options)

    async def _attempt(self, request: httpx.Request, *, retryable: bool) -> httpx.Response:
        """One attempt: the response, or the classified error the pipeline acts on."""
        method, url = request.method, str(request.url)
        error = HttpTransientError if retryable else HttpError
        unsafe = "" if retryable else f"; not retried: {_NOT_IDEMPOTENT.format(method=method)}"
        try:
            response = await self.client.send(request)
        except _TRANSIENT_TRANSPORT as exc:
            message = f"{method} {url} failed: {_describe(exc)}{unsafe}"
            raise error(message, method=method, url=url) from exc
        status = response.status_code
        if status < 400:  # noqa: PLR2004 - the HTTP error boundary
            return response
        if status not in self._transient_statuses:
            error, unsafe = (HttpClientError if status < 500 else HttpError), ""  # noqa: PLR2004
        raise error(
            f"{method} {url} answered {status} {response.reason_phrase}{unsafe}",
            method=method,
            url=url,
            status=status,
            retry_after_s=parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC)),
            response=response,
        )


def _describe(exc: BaseException) -> str:
    """The error's type and the first message in its chain (httpx often wraps empty ones)."""
    if str(exc):
        return f"{type(exc).__name__}: {exc}"
    seen = {id(exc)}
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        if str(cause):
            return f"{type(exc).__name__} ({type(cause).__name__}: {cause})"
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return type(exc).__name__


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait: delay-seconds or an HTTP date.

    ``now`` is the wall clock (aware, UTC) a date is measured from. A date in the past
    means "now" (0); a value that is neither form is ignored (``None``).
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC with no claim about local time (RFC 5322)
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
