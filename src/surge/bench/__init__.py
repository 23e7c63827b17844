"""surge's benchmarks: the playbook's experiments (§5 crawler steps, §6 loops, §7 100k requests) re-run here.

Every figure they print is measured in the run; the playbook's own figures appear only labelled as its claims.
"""

from __future__ import annotations

__all__: list[str] = []
