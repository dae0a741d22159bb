"""Fixtures of the fault tests: the figures report (the cluster and Sentinel fixtures,
``healthy_cluster`` and ``healthy_sentinel``, live in ``tests/conftest.py``).

``fault_report`` collects each scenario's figures and writes them as JSON when the session
ends: to ``$IGNITE_FAULT_REPORT`` if set, else to ``faults-report.json`` in pytest's
temporary directory for this session.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def fault_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``fault_report[scenario] = figures``; written as JSON at the end of the session."""
    report: dict[str, Any] = {}
    yield report
    if not report:
        return
    target = os.environ.get("IGNITE_FAULT_REPORT")
    path = Path(target) if target else tmp_path_factory.getbasetemp() / "faults-report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
