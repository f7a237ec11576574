"""The host-shared breaker on Windows: a clear NotImplementedError."""

from __future__ import annotations

import sys

import pytest

from fluxgate.shared import HostMemory


@pytest.mark.skipif(sys.platform != "win32", reason="Windows only")
@pytest.mark.parametrize("name", ["svc", None])
def test_on_windows_host_memory_is_not_implemented(name) -> None:  # pragma: no cover
    with pytest.raises(NotImplementedError):
        HostMemory(name)
