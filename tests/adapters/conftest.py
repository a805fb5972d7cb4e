"""A real HTTP/1.1 server on loopback, in the test's own (simulated-time) event loop.

Real sockets, simulated time: the server sleeps and hangs on the loop's clock, so a
backend that answers after 3 s or never answers costs microseconds, and the time the
server sees each request is exact. The ``wall_clock`` marker runs a test on a loop
whose wall clock (``datetime.now()``) moves in step with simulated time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import struct
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus

import httpx
import pytest

from resilience.testing import SimulatedLoop


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "wall_clock(at): run on a SimulatedLoop whose wall clock starts at `at`"
    )


def pytest_asyncio_loop_factories(config, item):
    marker = item.get_closest_marker("wall_clock")
    if marker is None:
        return None  # the root conftest's plain SimulatedLoop
    return {"simulated": functools.partial(SimulatedLoop, wall_clock=marker.args[0])}


@dataclass(frozen=True)
class Seen:
    """One request as the server received it, stamped with the loop's time."""

    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """What the server does with one request."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    fault: str | None = None  # "reset": RST the connection; "hang": never answer


class LoopbackServer:
    """Answers requests from a script of replies; ``200 ok`` once the script runs out."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.url = ""
        self._script: deque[Reply] = deque()
        self._closing = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    def reply(self, status=200, *, body=b"ok", headers=None, delay_s=0.0) -> None:
        self._script.append(Reply(status, body, dict(headers or {}), delay_s))

    def reset(self) -> None:
        self._script.append(Reply(fault="reset"))

    def hang(self) -> None:
        self._script.append(Reply(fault="hang"))

    @property
    def times(self) -> list[float]:
        return [seen.at for seen in self.requests]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop listening, release hung and slow replies, close every connection."""
        self._closing.set()
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await asyncio.gather(*self._handlers)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            while await self._serve_one(reader, writer):
                pass
        except ConnectionError:
            pass  # the client went away mid-request
        finally:
            writer.close()
            self._writers.discard(writer)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request and act on the next reply; whether the connection stays open."""
        request_line = await reader.readline()
        if not request_line or self._closing.is_set():
            return False
        method, path, _ = request_line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        loop = asyncio.get_running_loop()
        self.requests.append(Seen(loop.time(), method, path, headers, body))
        reply = self._script.popleft() if self._script else Reply()
        if reply.fault == "reset":
            linger_zero = struct.pack("ii", 1, 0)  # close() then sends RST, not FIN
            writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, linger_zero
            )
            writer.transport.abort()
            return False
        if reply.fault == "hang" or reply.delay_s:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(reply.delay_s or None):
                    await self._closing.wait()
            if self._closing.is_set():
                return False
        head = [
            f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}",
            f"Content-Length: {len(reply.body)}",
        ]
        head += [f"{name}: {value}" for name, value in reply.headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body)
        await writer.drain()
        return True


@pytest.fixture
async def server():
    server = LoopbackServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def client(server):
    # No httpx timeout: the pipeline's timeout on the simulated clock is the only limit.
    async with httpx.AsyncClient(base_url=server.url, timeout=None) as client:  # noqa: S113
        yield client
