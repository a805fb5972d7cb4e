"""HttpBackend against a real server on loopback, on simulated time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import httpx
import pytest
from tenacity import wait_fixed

from adapters.http import (
    HttpBackend,
    HttpClientError,
    HttpError,
    HttpTransientError,
    _describe,
    parse_retry_after,
)
from resilience import (
    CircuitOpenError,
    DeadlineExceeded,
    TransientError,
    circuit_breaker,
    compose,
    retry,
    timeout,
)
from resilience.events import RetryScheduled
from resilience.testing import EventCapture, now

#: Three attempts 0.5 s apart unless the server says otherwise, 1 s per attempt.
POLICY = compose(retry(attempts=3, wait=wait_fixed(0.5)), timeout(1.0))


@pytest.fixture
def http(client):
    return HttpBackend(client, backend="api", policy=POLICY)


async def test_a_200_is_returned_as_the_response(http, server):
    response = await http.get("/items", params={"q": "x"})
    assert (response.status_code, response.text) == (200, "ok")
    assert [(seen.method, seen.path) for seen in server.requests] == [("GET", "/items?q=x")]


async def test_a_503_with_retry_after_2_is_retried_after_exactly_2_seconds(http, server):
    server.reply(503, headers={"Retry-After": "2"})
    with EventCapture() as events:
        response = await http.get("/items")
    assert response.status_code == 200
    first, second = server.times
    assert second - first == pytest.approx(2.0, abs=1e-6)
    scheduled = events.of(RetryScheduled)
    assert [(e.delay_s, e.hinted) for e in scheduled] == [(2.0, True)]


@pytest.mark.wall_clock(datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC))
async def test_a_retry_after_http_date_is_measured_from_the_wall_clock(http, server):
    server.reply(503, headers={"Retry-After": "Wed, 01 Jan 2025 12:00:03 GMT"})
    response = await http.get("/items")
    assert response.status_code == 200
    assert server.times[0] == 0.0
    assert server.times[1] == pytest.approx(3.0, abs=1e-6)


async def test_a_post_without_an_idempotency_key_is_attempted_once(http, server):
    server.reply(503, headers={"Retry-After": "2"})
    with pytest.raises(HttpError) as caught:
        await http.post("/orders", json={"id": 1})
    assert not isinstance(caught.value, TransientError)
    assert (caught.value.status, caught.value.retry_after_s) == (503, 2.0)
    assert "not retried: POST is not idempotent" in str(caught.value)
    assert [seen.method for seen in server.requests] == ["POST"]


async def test_a_hanging_post_without_a_key_times_out_once_and_is_not_retried(http, server):
    server.hang()
    with pytest.raises(DeadlineExceeded):
        await http.post("/orders", json={"id": 1})
    assert now() == 1.0
    assert len(server.requests) == 1


async def test_a_reset_post_without_a_key_is_not_retried(http, server):
    server.reset()
    with pytest.raises(HttpError) as caught:
        await http.patch("/orders/1", json={"state": "paid"})
    assert not isinstance(caught.value, TransientError)
    assert caught.value.status is None
    assert len(server.requests) == 1


@pytest.mark.parametrize("header", ["Idempotency-Key", "idempotency-key"])
async def test_a_post_with_an_idempotency_key_is_retried(http, server, header):
    server.reply(503, headers={"Retry-After": "1"})
    response = await http.post("/orders", json={"id": 1}, headers={header: "order-1"})
    assert response.status_code == 200
    assert [seen.headers["idempotency-key"] for seen in server.requests] == ["order-1", "order-1"]
    assert [seen.body for seen in server.requests] == [b'{"id":1}', b'{"id":1}']
    assert server.times[1] - server.times[0] == pytest.approx(1.0, abs=1e-6)


async def test_a_post_marked_idempotent_is_retried(http, server):
    server.reply(502)
    response = await http.post("/search", json={"q": "x"}, idempotent=True)
    assert response.status_code == 200
    assert len(server.requests) == 2


async def test_a_get_marked_not_idempotent_is_attempted_once(http, server):
    server.reply(503)
    with pytest.raises(HttpError):
        await http.get("/tick", idempotent=False)
    assert len(server.requests) == 1


async def test_a_hang_is_cut_by_the_timeout_and_retried(http, server):
    server.hang()
    response = await http.get("/items")
    assert response.status_code == 200
    assert server.times == [0.0, 1.5]  # cut at 1.0, retried 0.5 s later
    assert now() == 1.5


async def test_a_slow_reply_within_the_timeout_arrives_when_the_server_sends_it(http, server):
    server.reply(200, body=b"late", delay_s=0.75)
    response = await http.get("/items")
    assert (response.text, now()) == ("late", 0.75)


async def test_a_404_is_not_retried(http, server):
    server.reply(404, body=b"no such item")
    with pytest.raises(HttpError) as caught:
        await http.get("/items/9")
    assert not isinstance(caught.value, TransientError)
    assert caught.value.status == 404
    assert "not retried" not in str(caught.value)
    assert caught.value.response is not None
    assert caught.value.response.text == "no such item"
    assert len(server.requests) == 1


async def test_a_connection_reset_is_retried(http, server):
    server.reset()
    response = await http.get("/items")
    assert response.status_code == 200
    assert server.times == [0.0, 0.5]


async def test_transient_statuses_are_retried_until_attempts_run_out(http, server):
    for _ in range(3):
        server.reply(429)
    with pytest.raises(HttpTransientError) as caught:
        await http.get("/items")
    assert caught.value.status == 429
    assert caught.value.retry_after_s is None
    assert server.times == [0.0, 0.5, 1.0]


async def test_a_500_is_not_retried_unless_declared_transient(client, server):
    server.reply(500)
    with pytest.raises(HttpError):
        await HttpBackend(client, backend="api", policy=POLICY).get("/a")
    server.reply(500)
    lenient = HttpBackend(client, backend="api", policy=POLICY, transient_statuses={500})
    assert (await lenient.get("/b")).status_code == 200
    assert [seen.path for seen in server.requests] == ["/a", "/b", "/b"]


async def test_the_default_pipeline_is_the_backends_configured_one(client, server, monkeypatch):
    monkeypatch.setenv("RESILIENCE_BACKENDS__API__TIMEOUT_S", "2")
    monkeypatch.setenv("RESILIENCE_BACKENDS__API__RETRY_ATTEMPTS", "1")
    server.hang()
    with pytest.raises(DeadlineExceeded):
        await HttpBackend(client, backend="api").delete("/items/1")
    assert now() == 2.0


async def test_put_and_request_send_through_the_pipeline(http, server):
    server.reply(504)
    assert (await http.put("/items/1", content=b"v")).status_code == 200
    assert (await http.request("HEAD", "/items/1")).status_code == 200
    assert [seen.method for seen in server.requests] == ["PUT", "PUT", "HEAD"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("2", 2.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("-1", None),
        ("1.5", None),
        ("\u00b2", None),
        ("soon", None),
        ("Wed, 01 Jan 2025 12:00:30 GMT", 30.0),
        ("Wed, 01 Jan 2025 12:00:30 -0000", 30.0),
        ("Wed, 01 Jan 2025 11:59:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header, expected):
    at = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, at) == expected


def _chained(*errors):
    for outer, inner in itertools.pairwise(errors):
        outer.__cause__ = inner
    return errors[0]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ConnectError("refused"), "ConnectError: refused"),
        (
            _chained(httpx.ReadError(""), ConnectionResetError(104, "reset")),
            "ReadError (ConnectionResetError: [Errno 104] reset)",
        ),
        (_chained(httpx.ReadError(""), httpx.ReadError("")), "ReadError"),
    ],
)
def test_transport_errors_are_described_by_the_first_message_in_their_chain(error, expected):
    assert _describe(error) == expected


def test_a_cyclic_error_chain_is_described_without_looping():
    outer, inner = httpx.ReadError(""), httpx.ReadError("")
    outer.__cause__, inner.__cause__ = inner, outer
    assert _describe(outer) == "ReadError"


@pytest.mark.parametrize(("status", "opens"), [(404, False), (422, False), (500, True)])
async def test_client_errors_do_not_open_the_breaker_but_server_errors_do(
    client, server, status, opens
):
    breaker = circuit_breaker(name=f"api-{status}", failure_threshold=3)
    http = HttpBackend(client, backend="api", policy=compose(breaker, timeout(1.0)))
    for _ in range(3):
        server.reply(status)
        with pytest.raises(HttpError) as caught:
            await http.get("/items/9")
        assert isinstance(caught.value, HttpClientError) is not opens
    server.reply(200)
    if opens:
        with pytest.raises(CircuitOpenError):
            await http.get("/items")
    else:
        assert (await http.get("/items")).status_code == 200
