"""Outcome writers: JSON lines, CSV and SQLite files (or stdout), batched and resumable at a position.

``open_sink(path)`` picks the format from the file extension.
"""

from __future__ import annotations

from surge.sinks.base import Sink, open_sink
from surge.sinks.csvsink import CSVSink
from surge.sinks.jsonl import JSONLSink
from surge.sinks.sqlitesink import SQLiteSink

__all__ = ["CSVSink", "JSONLSink", "SQLiteSink", "Sink", "open_sink"]
