"""Reports of a run: statistics, the terminal progress and summary, the JSON summary, the HTML page.

``Stats`` collects outcomes cheaply; everything else renders a ``StatsSnapshot``.
"""

from surge.report.stats import Stats, StatsSnapshot
from surge.report.summary import to_json

__all__ = ["Stats", "StatsSnapshot", "to_json"]
