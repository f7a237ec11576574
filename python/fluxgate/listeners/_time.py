"""How the shipped listeners print a signal's time."""

from datetime import datetime


def format_timestamp(timestamp: float) -> str:
    """The wall-clock ``timestamp`` as ``YYYY-mm-dd HH:MM:SS`` in local time."""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")
