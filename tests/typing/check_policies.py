"""Checked by mypy (strict): decorated functions keep their signatures."""

from __future__ import annotations

from typing import assert_type

from resilience import adaptive_deadline, circuit_breaker, compose, retry, safe_default, timeout


@timeout(1)
async def fetch(query: str, *, top_k: int = 3) -> list[str]:
    return [query] * top_k


@safe_default(list)
@retry()
@circuit_breaker()
@adaptive_deadline()
async def search(query: str) -> list[str]:
    return [query]


async def use() -> None:
    docs: list[str] = await fetch("q", top_k=2)
    found: list[str] = await search("q")
    pipeline = compose(retry(), timeout(2))
    guarded = pipeline(fetch)
    more: list[str] = await guarded("q")
    fallback = safe_default(0)(fetch)
    either: list[str] | int = await fallback("q")
    composed = compose(safe_default(0), retry(), timeout(1))(fetch)
    assert_type(await composed("q"), list[str] | int)
    plain = compose(retry(), timeout(1))(fetch)
    assert_type(await plain("q"), list[str])
    del docs, found, more, either
