"""Call records and the metric monoid windows aggregate them into."""

from fluxgate._values import Metric, Record

__all__ = ["Metric", "Record"]
