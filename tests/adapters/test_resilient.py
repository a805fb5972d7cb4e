"""resilient(service): same callers, same signatures and values, policies on async methods."""

from __future__ import annotations

import asyncio
import copy
import inspect
import pickle

import pytest
from tenacity import wait_fixed

from adapters import Document, RagService, resilient
from resilience import ConfigurationError, DeadlineExceeded, compose, retry, timeout
from resilience.events import RetryScheduled
from resilience.testing import EventCapture, now

#: Three attempts 1 s apart, 2 s per attempt: exact times to assert.
POLICY = compose(retry(attempts=3, wait=wait_fixed(1.0)), timeout(2.0))

ASYNC_METHODS = ("fetch", "save", "flaky", "hang", "outer", "ping", "make")


class Store:
    """A service with every kind of attribute the proxy meets."""

    region = "eu"

    def __init__(self) -> None:
        self.saved: list[tuple[str, int]] = []
        self.failures = 0
        self.attempts = 0

    @property
    def size(self) -> int:
        return len(self.saved)

    def describe(self, prefix: str = "") -> str:
        return f"{prefix}store({self.region})"

    async def fetch(self, key: str, *, default: int | None = None) -> dict[str, int | None]:
        return {key: default}

    async def save(self, key: str, value: int) -> None:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store unreachable")
        self.saved.append((key, value))

    async def flaky(self) -> str:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store unreachable")
        return "done"

    async def hang(self) -> None:
        await asyncio.Event().wait()

    async def outer(self) -> str:
        return await self.flaky()

    @staticmethod
    async def ping() -> str:
        return "pong"

    @classmethod
    async def make(cls) -> str:
        return cls.__name__


class SlottedStore(Store):
    """The same service with ``__slots__`` (a subclass could not share its state)."""

    __slots__ = ("extra",)


@pytest.fixture(params=[Store, SlottedStore])
def service(request):
    return request.param()


@pytest.fixture
def wrapped(service):
    return resilient(service, backend="store", policy=POLICY)


@pytest.mark.parametrize("name", ASYNC_METHODS)
def test_signatures_are_unchanged(service, wrapped, name):
    assert inspect.signature(getattr(wrapped, name)) == inspect.signature(getattr(service, name))
    assert inspect.iscoroutinefunction(getattr(wrapped, name))
    assert getattr(wrapped, name) is not getattr(service, name)


async def test_return_values_are_unchanged(service, wrapped):
    assert await wrapped.fetch("k", default=3) == await service.fetch("k", default=3) == {"k": 3}
    assert await wrapped.save("k", 1) is None
    assert (await wrapped.ping(), await wrapped.make()) == ("pong", type(service).__name__)
    assert service.saved == [("k", 1)]


def test_sync_attributes_pass_through(service, wrapped):
    assert wrapped.describe == service.describe
    assert wrapped.describe("my ") == "my store(eu)"
    assert wrapped.region == "eu"
    service.saved.append(("k", 1))
    assert wrapped.size == 1
    assert wrapped.saved is service.saved


def test_setting_an_attribute_sets_it_on_the_service(service, wrapped):
    wrapped.region = "us"
    assert service.region == "us"
    del wrapped.region
    assert service.region == "eu"


def test_the_wrapper_is_an_instance_of_the_services_class(service, wrapped):
    assert isinstance(wrapped, type(service))
    assert isinstance(wrapped, Store)
    assert repr(wrapped) == f"resilient({service!r}, backend='store')"
    assert set(dir(service)) <= set(dir(wrapped))


@pytest.mark.parametrize("duplicate", [copy.copy, copy.deepcopy, pickle.dumps])
def test_copying_the_wrapper_fails_clearly(wrapped, duplicate):
    with pytest.raises(TypeError, match="copy the service, then wrap it"):
        duplicate(wrapped)


def test_an_uninitialised_wrapper_raises_attribute_error_not_recursion(wrapped):
    bare = object.__new__(type(wrapped))
    with pytest.raises(AttributeError):
        _ = bare.fetch


def test_wrapped_methods_are_built_once_and_follow_replaced_attributes(service, wrapped):
    first = wrapped.fetch
    assert wrapped.fetch is first

    async def replacement(key: str, *, default: int | None = None) -> dict[str, int | None]:
        return {}

    if isinstance(service, SlottedStore):
        return  # no instance __dict__ to put a replacement in
    service.fetch = replacement
    assert wrapped.fetch is not first
    assert inspect.signature(wrapped.fetch) == inspect.signature(replacement)


async def test_a_failing_method_is_retried_by_the_policy(service, wrapped):
    service.failures = 2
    with EventCapture() as events:
        assert await wrapped.flaky() == "done"
    assert service.attempts == 3
    assert now() == 2.0
    assert [(e.backend, e.delay_s) for e in events.of(RetryScheduled)] == [("store", 1.0)] * 2


async def test_a_hanging_method_is_cut_by_the_timeout(wrapped):
    with pytest.raises(DeadlineExceeded):
        await wrapped.hang()
    assert now() == 3 * 2.0 + 2 * 1.0


async def test_a_method_calling_another_goes_through_the_policies_once(service, wrapped):
    service.failures = 5
    with pytest.raises(ConnectionError):
        await wrapped.outer()
    assert service.attempts == 3


async def test_the_default_policy_is_the_backends_configured_pipeline(service, monkeypatch):
    monkeypatch.setenv("RESILIENCE_BACKENDS__STORE__TIMEOUT_S", "0.5")
    monkeypatch.setenv("RESILIENCE_BACKENDS__STORE__RETRY_ATTEMPTS", "1")
    wrapped = resilient(service, backend="store")
    with pytest.raises(DeadlineExceeded):
        await wrapped.hang()
    assert now() == 0.5


async def test_methods_replaces_the_policy_of_one_method(service):
    wrapped = resilient(service, backend="store", policy=POLICY, methods={"hang": timeout(0.25)})
    with pytest.raises(DeadlineExceeded):
        await wrapped.hang()
    assert now() == 0.25


async def test_no_retry_keeps_the_timeout_but_attempts_once(service):
    wrapped = resilient(service, backend="store", policy=POLICY, no_retry=["save", "hang"])
    service.failures = 1
    with pytest.raises(ConnectionError):
        await wrapped.save("k", 1)
    assert service.attempts == 1
    with pytest.raises(DeadlineExceeded):
        await wrapped.hang()
    assert now() == 2.0


async def test_no_retry_applies_to_a_per_method_policy_too(service):
    fast = compose(retry(attempts=5, wait=wait_fixed(0.1)), timeout(0.5))
    wrapped = resilient(
        service, backend="store", policy=POLICY, methods={"hang": fast}, no_retry={"hang"}
    )
    with pytest.raises(DeadlineExceeded):
        await wrapped.hang()
    assert now() == 0.5


async def test_excluded_methods_are_the_services_own(service):
    wrapped = resilient(service, backend="store", policy=POLICY, exclude=["flaky"])
    assert wrapped.flaky == service.flaky
    service.failures = 1
    with pytest.raises(ConnectionError):
        await wrapped.flaky()
    assert service.attempts == 1


async def test_a_protocol_implementation_stays_one():
    class Retriever:
        async def retrieve(self, query: str, *, top_k: int) -> list[Document]:
            return [Document(query)] * top_k

    rag = resilient(Retriever(), backend="rag", policy=POLICY)
    assert isinstance(rag, RagService)
    assert await rag.retrieve("q", top_k=2) == [Document("q"), Document("q")]


@pytest.mark.parametrize(
    ("options", "problem", "why"),
    [
        (
            {"methods": {"sav": timeout(1)}},
            "methods['sav']",
            "no method 'sav'; did you mean 'save'?",
        ),
        ({"no_retry": ["describe"]}, "no_retry['describe']", "is not an async method"),
        ({"exclude": ["size"]}, "exclude['size']", "is a property"),
        ({"exclude": ["region"]}, "exclude['region']", "is not an async method (it is a str)"),
        ({"no_retry": ["__init__"]}, "no_retry['__init__']", "special method"),
        ({"no_retry": ["save"], "exclude": ["save"]}, "no_retry['save']", "also excluded"),
    ],
)
def test_bad_method_names_fail_when_wrapping(service, options, problem, why):
    with pytest.raises(ConfigurationError) as caught:
        resilient(service, backend="store", policy=POLICY, **options)
    assert list(caught.value.problems) == [problem]
    assert why in caught.value.problems[problem]


def test_every_bad_name_is_reported_at_once(service):
    with pytest.raises(ConfigurationError) as caught:
        resilient(service, backend="store", policy=POLICY, no_retry=["svae", "describe"])
    assert set(caught.value.problems) == {"no_retry['svae']", "no_retry['describe']"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"no_retry": "save"}, "not the string 'save'"),
        ({"methods": {"save": "retry"}}, "methods['save'] must be a resilience Policy"),
        ({"policy": "retry"}, "policy must be a resilience Policy"),
    ],
)
def test_wrong_option_types_fail_when_wrapping(service, options, message):
    with pytest.raises(TypeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        resilient(service, backend="store", **options)


def test_a_backend_name_is_required(service):
    with pytest.raises(ValueError, match="backend must be a non-empty name"):
        resilient(service, backend="", policy=POLICY)
