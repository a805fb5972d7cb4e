"""HttpBackend against a real local HTTP server: Retry-After honoured, a hang cut short.

A tiny HTTP/1.1 server runs in the same event loop on 127.0.0.1 (a free port). Its
``/flaky/...`` paths answer their first request with ``503`` and ``Retry-After: 1``, then
``200``; ``/hang`` never answers. ``adapters.http.HttpBackend`` calls it through a retry
and a per-attempt timeout policy:

* ``GET /flaky/items`` is retried once, exactly 1 s later, as the server asked;
* ``GET /hang`` has each attempt cut at 1 s, is retried, then fails with
  ``DeadlineExceeded``;
* ``POST /flaky/orders`` without an ``Idempotency-Key`` is sent once and not retried.

Everything runs on simulated time (``resilience.testing.run_simulated``): real sockets,
but the waits cost no real time. Run ``.venv/bin/python examples/http_backend.py`` (needs
the ``http`` extra).
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Self

import httpx

from adapters.http import HttpBackend
from resilience import compose, events, retry, timeout
from resilience.testing import EventCapture, run_simulated

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from types import TracebackType

#: Up to 3 attempts with jittered backoff (or the server's Retry-After), 1 s per attempt.
POLICY = compose(retry(attempts=3, initial_delay_s=0.2), timeout(1.0))


class LocalServer:
    """A minimal HTTP/1.1 server on loopback: one flaky family of paths and one that hangs.

    ``requests`` records ``(loop time, method, path)`` for every request received.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[float, str, str]] = []
        self.url = ""
        self._answered: set[str] = set()  # flaky paths that already got their 503
        self._closing = asyncio.Event()
        self._connections: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release hung requests and wait for every connection, so nothing outlives us."""
        self._closing.set()
        assert self._server is not None  # noqa: S101 - set in __aenter__
        self._server.close()
        await asyncio.gather(*self._connections)
        await self._server.wait_closed()

    def _reply(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/flaky/") and path not in self._answered:
            self._answered.add(path)
            return 503, {"Retry-After": "1"}, b"busy, come back in a second"
        if path.startswith("/flaky/"):
            return 200, {"Content-Type": "text/plain"}, f"fresh {path[7:]}".encode()
        return 404, {}, b"no such path"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: requests in turn (keep-alive) until the client closes it."""
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - a stream handler runs as a task
        self._connections.add(task)
        try:
            while (request := await _read_request(reader)) is not None:
                method, path = request
                self.requests.append((asyncio.get_running_loop().time(), method, path))
                if path == "/hang":
                    await self._closing.wait()  # never answer; the client gives up first
                    return
                status, headers, body = self._reply(path)
                head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
                head += [f"{name}: {value}" for name, value in headers.items()]
                head.append(f"Content-Length: {len(body)}")
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
                await writer.drain()
        except ConnectionError:
            pass  # the client went away mid-request
        finally:
            writer.close()
            self._connections.discard(task)


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """The next request's method and path (its body read and dropped); ``None`` at EOF."""
    request_line = await reader.readline()
    if not request_line:
        return None
    method, path, _ = request_line.decode("latin-1").split(" ", 2)
    length = 0
    while (line := await reader.readline()) not in {b"\r\n", b""}:
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return method, path


@dataclass
class Case:
    """One call and what happened to it, in simulated seconds."""

    title: str
    started: float
    finished: float
    outcome: str
    #: When the server received each attempt.
    requests: list[float] = field(default_factory=list)
    #: The policies' timeouts and retries, in order.
    steps: list[events.TimedOut | events.RetryScheduled] = field(default_factory=list)


async def demo() -> list[Case]:
    """Run the three calls against a fresh server on the running loop."""
    loop = asyncio.get_running_loop()
    cases = []
    # No httpx timeout: the policy's timeout, on the loop's clock, is the only limit.
    async with (
        LocalServer() as server,
        httpx.AsyncClient(base_url=server.url, timeout=None) as client,  # noqa: S113
    ):
        api = HttpBackend(client, backend="api", policy=POLICY)
        calls: list[tuple[str, Callable[[], Awaitable[httpx.Response]]]] = [
            ("GET /flaky/items", lambda: api.get("/flaky/items")),
            ("GET /hang", lambda: api.get("/hang")),
            (
                "POST /flaky/orders (no Idempotency-Key)",
                lambda: api.post("/flaky/orders", json={"item": 1}),
            ),
        ]
        for title, call in calls:
            seen = len(server.requests)
            started = loop.time()
            with EventCapture() as captured:
                try:
                    response = await call()
                except Exception as exc:  # noqa: BLE001 - the example reports any failure
                    outcome = f"{type(exc).__name__}: {exc}"
                else:
                    outcome = f"{response.status_code} {response.text!r}"
            steps = [
                event
                for event in captured.events
                if isinstance(event, events.TimedOut | events.RetryScheduled)
            ]
            requests = [at for at, _, _ in server.requests[seen:]]
            cases.append(Case(title, started, loop.time(), outcome, requests, steps))
    return cases


def describe(case: Case) -> list[str]:
    """What one call did, attempt by attempt."""
    lines = [
        case.title,
        "  the server received it at t=" + ", ".join(f"{at:.3f}" for at in case.requests) + " s",
    ]
    for step in case.steps:
        if isinstance(step, events.TimedOut):
            lines.append(f"  attempt {step.attempt} timed out after {step.limit_s:.1f} s")
        else:
            why = "as the server's Retry-After asked" if step.hinted else "jittered backoff"
            lines.append(
                f"  attempt {step.attempt} failed ({step.error_type}): "
                f"retrying in {step.delay_s:.3f} s, {why}"
            )
    took = case.finished - case.started
    lines.append(f"  -> {case.outcome}")
    lines.append(f"     done at t={case.finished:.3f} s, {took:.3f} s after the call")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Run the calls on simulated time and print what each one did."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    events.remove_observer(events.log_event)  # the lines below say it all
    try:
        cases = run_simulated(demo())
    finally:
        events.add_observer(events.log_event)
    print("HttpBackend with retry(attempts=3) and timeout(1.0), on simulated time\n")
    for case in cases:
        print("\n".join(describe(case)))


if __name__ == "__main__":
    main()
