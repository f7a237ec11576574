"""One breaker for every process of a host: ``shared=HostMemory(...)``; one
for a fleet of hosts: ``shared=RedisFleet(...)`` (``fluxgate._fleet``).

A breaker built with ``shared=HostMemory("payments")`` keeps its state, its
period, ``changed_at``, ``reopens``, the failure streak and its window in a
segment of shared memory that every process of the same user on the host
maps when it builds a breaker of that name (``docs/sharing.md``). An unnamed
``HostMemory()`` is shared with the children forked after the breaker was
built. Not imported by ``import fluxgate``.
"""

from __future__ import annotations

import mmap
import os
import re
import stat
import sys
import tempfile
import time
from typing import Any

from fluxgate import _fluxgate
from fluxgate._fleet import RedisFleet

if sys.platform != "win32":
    import fcntl

__all__ = ["HostMemory", "RedisFleet"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_PREFIX = "fluxgate-"


def _default_directory() -> str:
    if sys.platform.startswith("linux") and os.path.isdir("/dev/shm"):
        return "/dev/shm"
    return tempfile.gettempdir()


def _boot_id() -> int:
    """A number that changes with every boot of the host (and not with the
    wall clock, which tests may freeze)."""
    return _fluxgate._boot_id()


def _pid_namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str or None, not {type(name).__name__}")
    if not _NAME.fullmatch(name):
        raise ValueError(
            "name must be 1 to 100 letters, digits, '_', '.' or '-', starting "
            f"with a letter or digit, not {name!r}"
        )
    return name


def _segment_path(name: str, directory: str) -> str:
    return os.path.join(directory, f"{_PREFIX}{os.getuid()}-{name}")


def _check_file(fd: int, path: str) -> os.stat_result:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is not a regular file")
    if info.st_uid != os.getuid():
        raise PermissionError(
            f"{path} belongs to another user (uid {info.st_uid}); a shared "
            "breaker is only shared by the processes of one user"
        )
    if info.st_mode & 0o077:
        raise PermissionError(
            f"{path} can be read or written by other users "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); a shared breaker's "
            "file must have mode 0600"
        )
    return info


class HostMemory:
    """Where a breaker shared by the processes of a host keeps its state.

    ``HostMemory("payments")``: a file ``fluxgate-<uid>-payments`` in
    ``directory`` (default ``/dev/shm`` on Linux, the temporary directory
    elsewhere), mapped by every process of the same user that builds a
    breaker with that name. ``HostMemory()``: memory made when the first
    breaker is built with it and shared with the processes forked after.
    """

    __slots__ = ("_name", "_directory", "_anonymous")

    def __init__(
        self, name: str | None = None, *, directory: str | os.PathLike[str] | None = None
    ) -> None:
        if sys.platform == "win32":
            raise NotImplementedError(
                "HostMemory needs POSIX shared memory: it runs on Linux and macOS"
            )
        self._name = None if name is None else _check_name(name)
        if directory is None:
            self._directory = _default_directory()
        elif isinstance(directory, (str, os.PathLike)):
            self._directory = os.fspath(directory)
            if not isinstance(self._directory, str):
                raise TypeError("directory must be a str or os.PathLike[str]")
        else:
            raise TypeError(
                f"directory must be a path or None, not {type(directory).__name__}"
            )
        self._anonymous: mmap.mmap | None = None

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def directory(self) -> str:
        return self._directory

    @property
    def path(self) -> str | None:
        """The segment's file, or None for an unnamed HostMemory."""
        if self._name is None:
            return None
        return _segment_path(self._name, self._directory)

    def __repr__(self) -> str:
        if self._name is None:
            return "HostMemory()"
        return f"HostMemory({self._name!r}, directory={self._directory!r})"

    def __reduce__(self) -> Any:
        if self._name is None:
            raise TypeError(
                "an unnamed HostMemory cannot be pickled: it is shared only with "
                "processes forked after its breaker was built; give it a name, "
                "as in HostMemory('payments'), to share it with spawned processes"
            )
        return (_rebuild, (self._name, self._directory))

    @staticmethod
    def unlink(name: str, *, directory: str | os.PathLike[str] | None = None) -> None:
        """Remove the named segment. Processes attached keep using it;
        breakers built afterwards start a new one."""
        folder = _default_directory() if directory is None else os.fspath(directory)
        os.unlink(_segment_path(_check_name(name), str(folder)))

    # ---- what the breakers call ------------------------------------------

    def _fluxgate_segment(self, spec: bytes) -> mmap.mmap:
        """The mapping of this segment for a breaker of shape ``spec``,
        made if need be; ValueError if it exists with another shape."""
        size = _fluxgate._segment_size(spec)
        _watch_forks()
        if self._name is None:
            if self._anonymous is None:
                mapping = mmap.mmap(-1, size, flags=mmap.MAP_SHARED)
                _fluxgate._segment_make(
                    mapping, spec, _boot_id(), _pid_namespace(), time.time()
                )
                self._anonymous = mapping
                return mapping
            _fluxgate._segment_check(
                self._anonymous, spec, _boot_id(), _pid_namespace(), "HostMemory()"
            )
            return self._anonymous
        return self._map_file(spec, size)

    def _map_file(self, spec: bytes, size: int) -> mmap.mmap:
        path = _segment_path(self._name or "", self._directory)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        flags |= getattr(os, "O_CLOEXEC", 0)
        while True:
            fd = os.open(path, flags, 0o600)
            try:
                _check_file(fd, path)
                # Only attaching is serialised: the first process makes the
                # segment while the others wait to check it. The mapping
                # keeps a duplicate of the descriptor, so the lock is let go
                # explicitly.
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    if not _is_current(fd, path):
                        continue  # replaced while we waited: open the new one
                    return self._map_locked(fd, path, spec, size)
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def _map_locked(self, fd: int, path: str, spec: bytes, size: int) -> mmap.mmap:
        boot, namespace = _boot_id(), _pid_namespace()
        length = os.fstat(fd).st_size
        if length == 0:
            _reserve(fd, size)
            mapping = mmap.mmap(fd, size)
            _fluxgate._segment_make(mapping, spec, boot, namespace, time.time())
            return mapping
        mapping = mmap.mmap(fd, length)
        if _fluxgate._segment_check(mapping, spec, boot, namespace, repr(path)):
            return mapping
        # Made before the last boot. A new file takes its name, so that no
        # process still mapping the old one sees it change under it.
        mapping.close()
        return _replace_segment(path, spec, size, boot, namespace)


def _reserve(fd: int, size: int) -> None:
    """Size the file and, where the system can, reserve its memory now: a
    full tmpfs is then an OSError here rather than a SIGBUS later."""
    os.ftruncate(fd, size)
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError:
            os.ftruncate(fd, 0)
            raise


def _is_current(fd: int, path: str) -> bool:
    """Whether ``fd`` is still the file at ``path``."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _replace_segment(
    path: str, spec: bytes, size: int, boot: int, namespace: int
) -> mmap.mmap:
    fd, temporary = tempfile.mkstemp(prefix=".fluxgate-", dir=os.path.dirname(path))
    try:
        _reserve(fd, size)
        mapping = mmap.mmap(fd, size)
        _fluxgate._segment_make(mapping, spec, boot, namespace, time.time())
        os.replace(temporary, path)
        return mapping
    except BaseException:
        os.unlink(temporary)
        raise
    finally:
        os.close(fd)


def _rebuild(name: str, directory: str) -> HostMemory:
    return HostMemory(name, directory=directory)


_forks_watched = False


def _watch_forks() -> None:
    """Segment locks name their holder by pid: every process must know its
    own, a forked child included."""
    global _forks_watched
    _fluxgate._refresh_pid()
    if not _forks_watched and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_fluxgate._refresh_pid)
        _forks_watched = True


def _segments(directory: str | None = None) -> list[tuple[str, str]]:
    """(name, path) of this user's segments in ``directory``."""
    folder = _default_directory() if directory is None else directory
    prefix = f"{_PREFIX}{os.getuid()}-"
    found = []
    for entry in sorted(os.listdir(folder)):
        if entry.startswith(prefix) and _NAME.fullmatch(entry[len(prefix) :]):
            found.append((entry[len(prefix) :], os.path.join(folder, entry)))
    return found


def _reset(name: str, directory: str | None = None) -> None:
    """A ``reset()`` of the named shared breaker, as any of its processes
    would command it: a new period, CLOSED, an empty window."""
    import asyncio
    import functools
    import operator

    from fluxgate import AsyncCircuitBreaker, CircuitBreaker
    from fluxgate.trippers import SlowRate
    from fluxgate.windows import CountWindow, TimeWindow

    memory = HostMemory(name, directory=directory)
    shape = _describe(memory.path or "")
    size = shape["window_size"]
    window = CountWindow(size) if shape["window_kind"] == "CountWindow" else TimeWindow(size)
    leaves = [SlowRate(1.0, threshold=t) for t in shape["slow_thresholds"]]
    tripper = functools.reduce(operator.or_, leaves) if leaves else None
    if shape["async"]:
        breaker = AsyncCircuitBreaker(
            window=window,
            tripper=tripper,
            max_half_open_calls=shape["max_half_open_calls"],
            shared=memory,
        )
        asyncio.run(breaker.reset())
    else:
        CircuitBreaker(window=window, tripper=tripper, shared=memory).reset()


def _describe(path: str) -> dict[str, Any]:
    """A segment's shape and state, read without attaching a breaker."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        _check_file(fd, path)
        size = os.fstat(fd).st_size
        if size == 0:
            raise ValueError(f"{path} is empty")
        with mmap.mmap(fd, size, access=mmap.ACCESS_COPY) as mapping:
            description: dict[str, Any] = _fluxgate._describe_segment(mapping)
            return description
    finally:
        os.close(fd)
