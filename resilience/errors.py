"""The toolkit's exceptions, all under :class:`ResilienceError`."""

from __future__ import annotations


class ResilienceError(Exception):
    """Base of every error the toolkit raises itself."""


class DeadlineExceeded(ResilienceError, TimeoutError):  # noqa: N818 - public name
    """A call ran out of time: its own limit or the caller's budget.

    Also a :class:`TimeoutError`, so existing ``except TimeoutError`` clauses keep working.
    """

    def __init__(self, backend: str | None, limit_s: float, *, budget: bool = False) -> None:
        what = "deadline budget" if budget else "limit"
        who = "a deadline block" if backend is None else f"backend {backend!r}"
        super().__init__(f"{who} exceeded its {what} of {limit_s:.6g} s")
        self.backend = backend
        self.limit_s = limit_s
        self.budget = budget


class CircuitOpenError(ResilienceError):
    """The backend's breaker is open: the call was rejected without reaching it."""

    def __init__(self, backend: str, retry_after_s: float) -> None:
        super().__init__(backend, retry_after_s)
        self.backend = backend
        #: Seconds (on the event loop's clock) until the breaker admits a trial call.
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:  # formatted on demand: rejections are a hot path
        return (
            f"circuit for backend {self.backend!r} is open; try again in {self.retry_after_s:.6g} s"
        )


class QueueFullError(ResilienceError):
    """A backend's concurrency limit and its waiting queue are both full."""

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"backend {backend!r} rejected the call: {detail}")
        self.backend = backend


class DefaultFactoryError(ResilienceError):
    """A safe default's factory raised while replacing a failed call's result."""

    def __init__(
        self,
        backend: str,
        factory: object,
        factory_error: BaseException,
        original: BaseException | None,
    ) -> None:
        replacing = f" while replacing {type(original).__name__}" if original else ""
        super().__init__(
            f"safe default factory {factory!r} for backend {backend!r} raised "
            f"{type(factory_error).__name__}: {factory_error}{replacing}"
        )
        self.backend = backend
        self.factory = factory
        #: What the factory raised; the call's own failure is chained as ``__cause__``.
        self.factory_error = factory_error
        self.original = original


class ConfigurationError(ResilienceError, ValueError):
    """Invalid configuration; the message names every offending variable."""

    def __init__(self, problems: dict[str, str]) -> None:
        lines = "\n".join(f"  {name}: {why}" for name, why in problems.items())
        super().__init__(f"invalid resilience configuration:\n{lines}")
        #: Variable (or option) name -> what is wrong with it.
        self.problems = problems


class ClientError(ResilienceError):
    """Raise (or subclass) this when the backend answered that the request is wrong.

    An HTTP 4xx, say: the backend is up and said no. Not retried, and breakers count it
    as the healthy answer it is, so a run of bad requests cannot open a breaker.
    """


class TransientError(ResilienceError):
    """Raise (or subclass) this to mark a failure as worth retrying.

    ``retry_after_s`` carries a server's hint (``Retry-After``) to the retry policy.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


#: Errors that signal a bug in the caller, never a backend's health: they are not
#: retried, not counted by breakers, and logged loudly when a safe default hides them.
PROGRAMMING_ERRORS: tuple[type[Exception], ...] = (
    AssertionError,
    AttributeError,
    ImportError,
    LookupError,
    NameError,
    NotImplementedError,
    TypeError,
)


def is_programming_error(exc: BaseException) -> bool:
    """Tell a bug apart from a backend failure."""
    return isinstance(exc, PROGRAMMING_ERRORS)


def retry_after_hint(exc: BaseException) -> float | None:
    """The server's retry hint an exception carries, if any (duck-typed ``retry_after_s``)."""
    hint = getattr(exc, "retry_after_s", None)
    if isinstance(hint, int | float) and not isinstance(hint, bool) and hint >= 0:
        return float(hint)
    return None
