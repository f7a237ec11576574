"""Breakers made on demand, one per key, in bounded memory.

``BreakerRegistry(factory)`` hands out one breaker per key (an upstream host,
a tenant, a route): ``registry[key]`` returns the key's breaker, making it
with ``factory(key)`` on first use. Memory stays bounded: past
``max_breakers`` the registry evicts breakers that are CLOSED and have not
been used for ``idle_after`` seconds, approximately least recently used
first, and never one in any other state.

Time is read from ``time.monotonic()`` (looked up on the ``time`` module at
each use, so freezegun and ``unittest.mock`` move it). A lookup of an
existing key reads no clock: it only marks the entry as used; sweeps, which
run only when a new key would take the registry past its bound, turn those
marks into times.

The lookups are in C: ``BreakerRegistry`` inherits ``registry[key]`` and
``registry.get(key)`` from the native core's ``_RegistryBase``, which owns
the dict of entries (``_RegistryEntry``, also C). For a key the registry
holds, a lookup is a dict lookup and setting the entry's touched flag; only
a new key runs the Python below (``_make``: the once-latch, the factory and
the sweep).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import warnings
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from fluxgate._fluxgate import _RegistryBase, _RegistryEntry

if TYPE_CHECKING:
    from fluxgate._values import CircuitBreakerInfo
    from fluxgate.shared import HostMemory

__all__ = ["BreakerRegistry"]

_logger = logging.getLogger("fluxgate")


class _Breaker(Protocol):
    def info(self) -> CircuitBreakerInfo: ...


K = TypeVar("K", bound=Hashable)
B = TypeVar("B", bound=_Breaker)


# A key's segment is named by the prefix, "-" and 16 hex digits, within
# HostMemory's 100 characters.
_MAX_PREFIX = 100 - 17


def _monotonic() -> float:
    return time.monotonic()


def _closable_listeners(breaker: object) -> tuple[object, ...]:
    """The listeners of ``breaker`` that have a ``close()`` method.

    Both breakers keep their listeners, as a tuple, in ``_listeners``.
    """
    listeners = getattr(breaker, "_listeners", None)
    if not isinstance(listeners, tuple):
        return ()
    found: dict[int, object] = {}
    for listener in listeners:
        if callable(getattr(listener, "close", None)):
            found.setdefault(id(listener), listener)
    return tuple(found.values())


class _Latch:
    """Makes the first users of a new key wait for the one making it."""

    __slots__ = ("done", "owner")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.owner = threading.get_ident()


class BreakerRegistry(_RegistryBase, Generic[K, B]):
    """One breaker per key, made by ``factory(key)`` on first use.

    ``factory`` is any callable taking the key and returning a breaker
    (``CircuitBreaker``, ``AsyncCircuitBreaker`` or a subclass); it decides
    everything per key, for example the listeners' names.

    - ``registry[key]`` / ``registry.get(key)``: the key's breaker, made on
      first use. Threads asking at once for a new key wait for the one that
      runs the factory, so each key gets exactly one breaker; no lock common
      to all keys is held while a factory runs. A factory that raises makes
      nothing; its caller gets the exception and a waiting thread tries
      again itself. A factory asking for its own key gets ``RuntimeError``.
    - Bound: when a new key would make more than ``max_breakers`` breakers,
      the registry evicts, approximately least recently used first, breakers
      that are CLOSED and were not used for at least ``idle_after`` seconds.
      A breaker in any other state (OPEN, HALF_OPEN, FORCED_OPEN, DISABLED,
      METRICS_ONLY) is never evicted: its state is what it protects. If
      nothing can go, the registry grows past the bound (a ``RuntimeWarning``
      says so, once per registry) and tries again later.
    - Eviction: listeners of the evicted breaker that have a ``close()``
      method (``PrometheusListener``, ``OTelListener``) and that no other
      breaker in the registry uses are closed. Code still holding an evicted
      breaker keeps using it, on its own; the next lookup of its key makes a
      new one, starting CLOSED.
    - Inspection, which neither makes nor marks breakers:
      ``get_existing(key)``, ``key in registry``, ``len(registry)``,
      ``items()``.
    - ``shared=HostMemory(prefix)``: breakers shared by the processes of the
      host, one named ``HostMemory`` per key (the prefix, ``-`` and a hash of
      ``repr(key)``, in the same directory), which the registry passes to
      ``factory(key, shared)``. The bound and the eviction are per process.
    """

    __slots__ = (
        "_factory",
        "_max_breakers",
        "_idle_after",
        "_pending",
        "_lock",
        "_users",
        "_warned",
        "_next_sweep_size",
        "_next_sweep_time",
        "_shared",
        "__weakref__",
    )

    def __init__(
        self,
        factory: Callable[[K], B] | Callable[[K, HostMemory], B],
        *,
        max_breakers: int = 10_000,
        idle_after: float = 300.0,
        shared: HostMemory | None = None,
    ) -> None:
        if not callable(factory):
            raise TypeError(f"factory must be callable, not {type(factory).__name__}")
        if shared is not None:
            from fluxgate.shared import HostMemory

            if not isinstance(shared, HostMemory):
                raise TypeError(
                    f"shared must be a HostMemory or None, not {type(shared).__name__}"
                )
            if shared.name is None or len(shared.name) > _MAX_PREFIX:
                raise ValueError(
                    "shared must be a named HostMemory whose name, at most "
                    f"{_MAX_PREFIX} characters, prefixes each key's segment"
                )
        self._shared = shared
        if isinstance(max_breakers, bool) or not isinstance(max_breakers, int):
            raise TypeError(f"max_breakers must be an int, not {type(max_breakers).__name__}")
        if max_breakers < 1:
            raise ValueError(f"max_breakers must be at least 1, not {max_breakers}")
        if isinstance(idle_after, bool) or not isinstance(idle_after, (int, float)):
            raise TypeError(f"idle_after must be a number, not {type(idle_after).__name__}")
        idle = float(idle_after)
        if math.isnan(idle) or idle < 0:
            raise ValueError(f"idle_after must be a number of seconds >= 0, not {idle_after!r}")
        self._factory = factory
        self._max_breakers = max_breakers
        self._idle_after = idle
        self._pending: dict[K, _Latch] = {}
        self._lock = threading.Lock()
        # id(listener) -> (listener, number of breakers in the registry using it)
        self._users: dict[int, tuple[object, int]] = {}
        self._warned = False
        # After a sweep that could not reach the bound, the next one waits
        # until the registry has grown a little more or time has passed.
        self._next_sweep_size = 0
        self._next_sweep_time = -math.inf

    # ---- lookups ---------------------------------------------------------

    # registry[key] and registry.get(key), in C (_RegistryBase): the entry's
    # breaker, the entry marked as used, or self._make(key) for a new key.
    # _entries (key -> _RegistryEntry) is _RegistryBase's dict, which the
    # code below fills and sweeps under the lock.
    if TYPE_CHECKING:

        @property
        def _entries(self) -> dict[K, _RegistryEntry[B]]: ...

        def __getitem__(self, key: K) -> B: ...

        def get(self, key: K) -> B:
            """The breaker of ``key``, made with ``factory(key)`` on first use."""

    def get_existing(self, key: K) -> B | None:
        """The breaker of ``key`` if the registry holds one, else None.

        Makes nothing and does not count as a use."""
        entry = self._entries.get(key)
        if entry is None:
            # A sweep moves entries (out and back in) under the lock.
            with self._lock:
                entry = self._entries.get(key)
        return None if entry is None else entry.breaker

    def __contains__(self, key: object) -> bool:
        if key in self._entries:
            return True
        with self._lock:  # as in get_existing
            return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[K, B]]:
        """A snapshot of the (key, breaker) pairs held now, oldest first
        (roughly: the sweeps reorder them)."""
        with self._lock:
            return [(key, entry.breaker) for key, entry in self._entries.items()]

    @property
    def max_breakers(self) -> int:
        """The number of breakers past which idle CLOSED ones are evicted."""
        return self._max_breakers

    @property
    def idle_after(self) -> float:
        """Seconds without use after which a CLOSED breaker may be evicted."""
        return self._idle_after

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {len(self._entries)} breakers, "
            f"max_breakers={self._max_breakers}, idle_after={self._idle_after}>"
        )

    # ---- making a breaker ------------------------------------------------

    def _make(self, key: K) -> B:
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    entry.touched = True
                    return entry.breaker
                latch = self._pending.get(key)
                if latch is None:
                    latch = self._pending[key] = _Latch()
                    break
            if latch.owner == threading.get_ident():
                raise RuntimeError(
                    f"the factory of {type(self).__name__} asked for the key it is making ({key!r})"
                )
            latch.done.wait()
            # Made (the loop finds it) or the factory raised (this thread tries).

        try:
            if self._shared is None:
                breaker = self._factory(key)  # type: ignore[call-arg]
            else:
                breaker = self._factory(key, self._key_memory(key))  # type: ignore[call-arg]
            listeners = _closable_listeners(breaker)
        except BaseException:
            with self._lock:
                del self._pending[key]
            latch.done.set()
            raise
        try:
            with self._lock:
                del self._pending[key]
                entry = _RegistryEntry(breaker, _monotonic(), listeners)
                self._entries[key] = entry
                for listener in listeners:
                    users = self._users.get(id(listener), (listener, 0))[1]
                    self._users[id(listener)] = (listener, users + 1)
                to_close, grew = self._evict_locked(key)
        finally:
            latch.done.set()
        if grew:
            warnings.warn(
                f"{type(self).__name__} holds {len(self._entries)} breakers, more than "
                f"max_breakers={self._max_breakers}: none of the others is CLOSED and idle "
                f"for {self._idle_after} s, so none can be evicted yet",
                RuntimeWarning,
                stacklevel=3,
            )
        for listener in to_close:
            try:
                listener.close()  # type: ignore[attr-defined]
            except Exception:
                _logger.exception(
                    "Closing listener %s of an evicted breaker failed", type(listener).__name__
                )
        return breaker

    def _key_memory(self, key: K) -> Any:
        """The named HostMemory of ``key``: the same in every process."""
        from fluxgate.shared import HostMemory

        assert self._shared is not None and self._shared.name is not None
        digest = hashlib.blake2b(repr(key).encode(), digest_size=8).hexdigest()
        return HostMemory(f"{self._shared.name}-{digest}", directory=self._shared.directory)

    # ---- eviction ------------------------------------------------------------

    def _evict_locked(self, newest: K) -> tuple[list[object], bool]:
        """Bring the registry back to its bound if it can; under the lock.

        Returns the listeners to close and whether the registry grew past its
        bound for the first time."""
        entries = self._entries
        excess = len(entries) - self._max_breakers
        if excess <= 0:
            return [], False
        now = _monotonic()
        if len(entries) < self._next_sweep_size and now < self._next_sweep_time:
            return [], False
        idle_after = self._idle_after
        to_close: list[object] = []
        evicted = 0
        earliest = math.inf  # when a breaker kept now may first be evicted
        # A clock sweep over the entries in their order: an entry used since
        # the last sweep is marked seen now and moved to the back; one unused
        # for idle_after seconds and CLOSED goes; any other moves to the back.
        # Two rounds, so that with idle_after=0 an entry whose mark the first
        # round cleared can go in the second. The newest entry is skipped:
        # it is the one being handed out.
        for _ in range(2 * len(entries)):
            key = next(iter(entries))
            entry = entries.pop(key)
            if key == newest or entry.touched:
                entry.touched = False
                entry.seen = now
                earliest = min(earliest, now + idle_after)
            elif self._is_closed(entry.breaker):
                if now - entry.seen >= idle_after:
                    evicted += 1
                    to_close.extend(self._release_locked(entry))
                    if evicted == excess:
                        break
                    continue
                earliest = min(earliest, entry.seen + idle_after)
            entries[key] = entry
        if evicted == excess:
            self._next_sweep_size = 0
            self._next_sweep_time = -math.inf
            return to_close, False
        # Nothing more can go now: sweep again once the registry has grown
        # by a sixteenth of its bound, or when a kept CLOSED breaker may have
        # become idle, whichever comes first (a sweep costs one look at
        # every breaker, so this keeps its cost per new key small).
        self._next_sweep_size = len(entries) + max(1, self._max_breakers // 16)
        self._next_sweep_time = earliest
        grew = not self._warned
        self._warned = True
        return to_close, grew

    @staticmethod
    def _is_closed(breaker: _Breaker) -> bool:
        try:
            return breaker.info().state == "closed"
        except Exception:  # a user window that fails: keep the breaker
            return False

    def _release_locked(self, entry: _RegistryEntry[B]) -> list[object]:
        """Forget ``entry``'s listeners; those no other breaker uses are returned."""
        unused = []
        for listener in entry.listeners:
            users = self._users.get(id(listener))
            if users is None:
                continue
            if users[1] <= 1:
                del self._users[id(listener)]
                unused.append(listener)
            else:
                self._users[id(listener)] = (listener, users[1] - 1)
        return unused
