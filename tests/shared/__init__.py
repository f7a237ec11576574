"""Real-process tests of the host-shared breaker, ``shared=HostMemory(...)``."""
