"""The calling forms of CircuitBreaker (SPEC.md section 8): ``call``,
``call_with_fallback``, ``@cb``, ``@cb()``, ``@cb(fallback=f)``,
``cb(func, fallback=f)``, fallbacks, and the decorated object's identity
(metadata, signature, methods, pickling, weak references)."""

from __future__ import annotations

import copy
import functools
import gc
import inspect
import pickle
import sys
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from fluxgate import CallNotPermittedError, CircuitBreaker
from fluxgate.trackers import TypeOf
from fluxgate.trippers import MinRequests
from fluxgate.windows import CountWindow

FORCED_OPEN = "Circuit breaker is forced open"


class Boom(Exception):
    """What the protected function raises."""


def boom() -> None:
    raise Boom("boom")


def make_breaker(**config: Any) -> CircuitBreaker:
    """A breaker that never trips on its own."""
    config.setdefault("window", CountWindow(100))
    config.setdefault("tripper", MinRequests(1_000_000))
    return CircuitBreaker(**config)


def counts(cb: CircuitBreaker) -> tuple[int, int]:
    m = cb.info().metrics
    return m.total_count, m.failure_count


MODULE_BREAKER = make_breaker()


@MODULE_BREAKER
def double(x: int) -> int:
    """Twice x."""
    return 2 * x


class Service:
    """A class whose methods are protected."""

    def __init__(self, name: str) -> None:
        self.name = name

    @MODULE_BREAKER
    def greet(self, greeting: str, *, punctuation: str = "!") -> str:
        return f"{greeting} {self.name}{punctuation}"

    @staticmethod
    @MODULE_BREAKER
    def static(x: int) -> int:
        return x + 1

    @classmethod
    @MODULE_BREAKER
    def klass(cls, x: int) -> tuple[type, int]:
        return cls, x


# Every way of protecting a function, each as (breaker, function, fallback) ->
# the protected function. The fallback is None where the form takes none.
Protect = Callable[[CircuitBreaker, Callable[..., Any], Any], Callable[..., Any]]
FORMS: dict[str, Protect] = {
    "@cb": lambda cb, func, fallback: cb(func),
    "@cb()": lambda cb, func, fallback: cb()(func),
    "cb(func=func)": lambda cb, func, fallback: cb(func=func),
    "@cb(fallback=f)": lambda cb, func, fallback: cb(fallback=fallback)(func),
    "cb(func, fallback=f)": lambda cb, func, fallback: cb(func, fallback=fallback),
}
WITH_FALLBACK = ["@cb(fallback=f)", "cb(func, fallback=f)"]


# ---- call --------------------------------------------------------------------


def _bare(sig: inspect.Signature) -> str:
    """The signature without annotations."""
    return str(
        sig.replace(
            parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
            return_annotation=sig.empty,
        )
    )


def test_call_signatures() -> None:
    cb = make_breaker()
    assert _bare(inspect.signature(cb.call)) == "(func, /, *args, **kwargs)"
    assert _bare(inspect.signature(cb.call_with_fallback)) == (
        "(func, fallback, /, *args, **kwargs)"
    )
    assert _bare(inspect.signature(cb)) == "(func=None, *, fallback=None)"


def test_call_passes_arguments_and_returns_the_result() -> None:
    cb = make_breaker()

    def f(a: int, /, b: int, *, c: int) -> tuple[int, int, int]:
        return a, b, c

    assert cb.call(f, 1, 2, c=3) == (1, 2, 3)
    assert cb.call(f, 1, b=2, c=3) == (1, 2, 3)
    result = object()
    assert cb.call(lambda: result) is result
    assert counts(cb) == (3, 0)


def test_call_passes_keywords_named_like_its_own_parameters() -> None:
    cb = make_breaker()

    def keywords(**kwargs: Any) -> dict[str, Any]:
        return kwargs

    assert cb.call(keywords, func=1, fallback=2) == {"func": 1, "fallback": 2}
    assert cb.call_with_fallback(keywords, lambda e: {}, func=1, fallback=2) == {
        "func": 1,
        "fallback": 2,
    }
    assert cb(keywords)(func=1, fallback=2, self=3) == {"func": 1, "fallback": 2, "self": 3}


def test_call_reraises_the_function_error() -> None:
    cb = make_breaker()
    error = Boom("mine")

    def raiser() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        cb.call(raiser)
    assert caught.value is error
    assert counts(cb) == (1, 1)


# ---- decorating --------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_every_form_protects(form: str) -> None:
    cb = make_breaker()

    def add(a: int, b: int = 10) -> int:
        return a + b

    protected = FORMS[form](cb, add, lambda error: "fallback")
    assert protected(1) == 11
    assert protected(1, b=2) == 3
    assert counts(cb) == (2, 0)
    cb.force_open()
    if form in WITH_FALLBACK:
        assert protected(1) == "fallback"
    else:
        with pytest.raises(CallNotPermittedError, match=f"^{FORCED_OPEN}$"):
            protected(1)


def test_decorator_syntax() -> None:
    cb = make_breaker()
    received: list[Exception] = []

    def fallback(error: Exception) -> str:
        received.append(error)
        return "fallback"

    @cb
    def plain(x: int) -> int:
        return x

    @cb()
    def called(x: int) -> int:
        return x

    @cb(fallback=fallback)
    def with_fallback(x: int) -> str:
        raise Boom(x)

    assert plain(1) == 1
    assert called(2) == 2
    assert with_fallback(3) == "fallback"
    assert [type(e) for e in received] == [Boom]
    assert counts(cb) == (3, 1)


def test_functions_share_their_breaker() -> None:
    cb = make_breaker()
    first = cb(lambda: 1)
    second = cb(lambda: 2)
    assert first() + second() == 3
    assert counts(cb) == (2, 0)
    cb.force_open()
    for protected in (first, second):
        with pytest.raises(CallNotPermittedError):
            protected()


def test_callables_that_are_not_functions() -> None:
    cb = make_breaker()
    assert cb(len)("abc") == 3
    assert cb(len).__name__ == "len"
    assert cb(functools.partial(pow, 2))(10) == 1024

    class Adder:
        def __call__(self, x: int) -> int:
            return x + 1

    assert cb(Adder())(1) == 2
    assert counts(cb) == (3, 0)


def test_positional_only_and_keyword_arguments_pass_through() -> None:
    cb = make_breaker()

    @cb
    def f(a: int, /, b: int, *args: int, c: int, **kwargs: int) -> Any:
        return a, b, args, c, kwargs

    assert f(1, 2, 3, 4, c=5, d=6) == (1, 2, (3, 4), 5, {"d": 6})
    assert f(1, b=2, c=3) == (1, 2, (), 3, {})
    with pytest.raises(TypeError):
        f(a=1, b=2, c=3)  # type: ignore[call-arg]  # raised by f: a failure
    assert counts(cb) == (3, 1)


# ---- fallbacks -----------------------------------------------------------------


def fallback_forms() -> list[Any]:
    """Each way of calling `func` with `fallback`, as (cb, func, fallback) ->
    result."""
    return [
        pytest.param(
            lambda cb, func, fallback: cb.call_with_fallback(func, fallback), id="call_with_fallback"
        ),
        pytest.param(lambda cb, func, fallback: cb(fallback=fallback)(func)(), id="@cb(fallback=f)"),
        pytest.param(lambda cb, func, fallback: cb(func, fallback=fallback)(), id="cb(func, fallback=f)"),
    ]


Run = Callable[[CircuitBreaker, Callable[[], Any], Callable[[Exception], Any]], Any]


@pytest.mark.parametrize("run", fallback_forms())
def test_fallback_receives_call_not_permitted_error(run: Run) -> None:
    cb = make_breaker()
    cb.force_open()
    received: list[Exception] = []
    ran: list[int] = []

    def fallback(error: Exception) -> str:
        received.append(error)
        return "instead"

    assert run(cb, lambda: ran.append(1), fallback) == "instead"
    assert ran == []
    assert len(received) == 1
    assert type(received[0]) is CallNotPermittedError
    assert str(received[0]) == FORCED_OPEN


@pytest.mark.parametrize("run", fallback_forms())
@pytest.mark.parametrize("tracked", [True, False], ids=["tracked", "untracked"])
def test_fallback_receives_any_exception(run: Run, tracked: bool) -> None:
    cb = make_breaker(tracker=TypeOf(Boom))
    error: Exception = Boom() if tracked else KeyError("k")
    received: list[Exception] = []

    def raiser() -> None:
        raise error

    def fallback(exception: Exception) -> Any:
        received.append(exception)
        return None

    assert run(cb, raiser, fallback) is None
    assert received == [error]
    assert received[0] is error
    assert counts(cb) == ((1, 1) if tracked else (0, 0))


@pytest.mark.parametrize("run", fallback_forms())
def test_fallback_result_replaces_only_failures(run: Run) -> None:
    cb = make_breaker()
    called: list[Exception] = []
    result = object()
    assert run(cb, lambda: result, called.append) is result
    assert called == []


@pytest.mark.parametrize("run", fallback_forms())
def test_fallback_exception_replaces_with_the_original_as_context(run: Run) -> None:
    cb = make_breaker()
    error = Boom("original")

    def raiser() -> None:
        raise error

    def fallback(exception: Exception) -> None:
        raise LookupError("from fallback")

    with pytest.raises(LookupError, match="^from fallback$") as caught:
        run(cb, raiser, fallback)
    assert caught.value.__context__ is error
    assert counts(cb) == (1, 1)


@pytest.mark.parametrize("run", fallback_forms())
def test_fallback_reraising_keeps_the_original(run: Run) -> None:
    cb = make_breaker()
    cb.force_open()

    def fallback(exception: Exception) -> None:
        raise exception

    with pytest.raises(CallNotPermittedError, match=f"^{FORCED_OPEN}$"):
        run(cb, lambda: None, fallback)


@pytest.mark.parametrize("run", fallback_forms())
def test_fallback_is_not_given_base_exceptions(run: Run) -> None:
    cb = make_breaker()
    called: list[Exception] = []

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(cb, interrupted, called.append)
    assert called == []


def test_call_with_fallback_passes_arguments() -> None:
    cb = make_breaker()

    def f(a: int, /, b: int, *, c: int) -> tuple[int, int, int]:
        return a, b, c

    assert cb.call_with_fallback(f, lambda e: (0, 0, 0), 1, 2, c=3) == (1, 2, 3)
    received: list[Exception] = []
    cb.call_with_fallback(f, received.append, 1, 2)  # type: ignore[call-arg, arg-type]
    assert [type(e) for e in received] == [TypeError]


# ---- identity of the protected function ---------------------------------------


def annotated(a: int, /, b: str = "x", *args: int, c: float, **kwargs: bytes) -> str:
    """The original docstring."""
    return b


@pytest.mark.parametrize("form", FORMS)
def test_metadata_as_functools_wraps(form: str) -> None:
    cb = make_breaker()

    def original(a: int, /, b: str = "x", *args: int, c: float, **kwargs: bytes) -> str:
        """The original docstring."""
        return b

    original.custom = "attribute"  # type: ignore[attr-defined]
    protected = FORMS[form](cb, original, print)
    for name in ("__module__", "__name__", "__qualname__", "__doc__", "__annotations__"):
        assert getattr(protected, name) == getattr(original, name), name
    assert protected.__name__ == "original"
    assert protected.__qualname__.endswith("<locals>.original")
    assert protected.__module__ == __name__
    assert protected.__doc__ == "The original docstring."
    assert protected.__wrapped__ is original  # type: ignore[attr-defined]
    assert protected.custom == "attribute"  # type: ignore[attr-defined]
    assert protected.__dict__ is not original.__dict__
    protected.extra = 1  # type: ignore[attr-defined]
    assert not hasattr(original, "extra")
    assert inspect.signature(protected) == inspect.signature(original)
    assert str(inspect.signature(protected)) == (
        "(a: 'int', /, b: 'str' = 'x', *args: 'int', c: 'float', **kwargs: 'bytes') -> 'str'"
    )
    if sys.version_info >= (3, 12):
        assert protected.__type_params__ == original.__type_params__  # type: ignore[attr-defined]


def test_metadata_of_a_module_level_function() -> None:
    assert double.__name__ == "double"
    assert double.__qualname__ == "double"
    assert double.__module__ == __name__
    assert double.__doc__ == "Twice x."
    assert double.__annotations__ == {"x": "int", "return": "int"}
    assert str(inspect.signature(double)) == "(x: 'int') -> 'int'"
    assert double(4) == 8


def test_binds_as_a_method() -> None:
    service = Service("Ada")
    assert service.greet("Hello") == "Hello Ada!"
    assert service.greet("Bye", punctuation=".") == "Bye Ada."
    bound = service.greet
    assert bound.__self__ is service  # type: ignore[attr-defined]
    assert bound.__func__ is Service.__dict__["greet"]  # type: ignore[attr-defined]
    assert Service.greet is Service.__dict__["greet"]
    assert Service.greet(Service("Bob"), "Hi") == "Hi Bob!"
    assert str(inspect.signature(bound)) == "(greeting: 'str', *, punctuation: 'str' = '!') -> 'str'"
    assert Service.greet.__qualname__ == "Service.greet"


def test_static_and_class_methods() -> None:
    assert Service.static(1) == 2
    assert Service("x").static(2) == 3
    assert Service.klass(3) == (Service, 3)
    assert Service("x").klass(4) == (Service, 4)


def test_a_method_fallback_receives_only_the_exception() -> None:
    cb = make_breaker()
    received: list[tuple[Any, ...]] = []

    def fallback(*args: Any) -> str:
        received.append(args)
        return "fallback"

    class Local:
        @cb(fallback=fallback)
        def method(self, x: int) -> str:
            raise Boom(x)

    assert Local().method(1) == "fallback"
    assert len(received) == 1 and len(received[0]) == 1
    assert isinstance(received[0][0], Boom)


def test_fallback_none_means_no_fallback() -> None:
    cb = make_breaker()
    protected = cb(boom, fallback=None)
    with pytest.raises(Boom):
        protected()
    with pytest.raises(Boom):
        cb(fallback=None)(boom)()


def test_method_calls_go_through_the_breaker() -> None:
    cb = make_breaker()

    class Local:
        @cb
        def method(self) -> Local:
            return self

    instance = Local()
    assert instance.method() is instance
    assert counts(cb) == (1, 0)
    cb.force_open()
    with pytest.raises(CallNotPermittedError):
        instance.method()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickles_by_reference(protocol: int) -> None:
    assert pickle.loads(pickle.dumps(double, protocol)) is double
    method = Service.__dict__["greet"]
    assert pickle.loads(pickle.dumps(method, protocol)) is method


def test_copies_are_the_same_function() -> None:
    assert copy.copy(double) is double
    assert copy.deepcopy(double) is double


def test_weak_references() -> None:
    cb = make_breaker()
    protected = cb(lambda: 1)
    protected_ref = weakref.ref(protected)
    breaker_ref = weakref.ref(cb)
    assert protected_ref() is protected
    assert breaker_ref() is cb
    del protected, cb
    gc.collect()
    assert protected_ref() is None
    assert breaker_ref() is None


def test_reference_cycles_are_collected() -> None:
    protected_holder: list[Any] = []
    cb = make_breaker(listeners=[lambda signal: protected_holder])
    protected: Any = None

    def itself() -> Any:
        return protected

    protected = cb(itself)
    protected.itself = protected
    protected_holder.append(protected)
    protected_ref = weakref.ref(protected)
    breaker_ref = weakref.ref(cb)
    del protected, cb, protected_holder
    gc.collect()
    assert protected_ref() is None
    assert breaker_ref() is None
