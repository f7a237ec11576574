"""Breakers wired into the clients that make the calls.

Each integration lives in a submodule that imports its library only when
imported itself: ``fluxgate.integrations.httpx`` (needs httpx). ``import
fluxgate`` imports none of them.
"""
