"""The protocol's own conformance: ``reference-driver`` gets the in-process
``reference``'s status on every clause, but the ones a driver cannot take."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fdsend_conformance.backend import Feature

#: The soak's fd count for both runs (the suite's default is 50,000): the
#: clause is judged the same way, in a fraction of the time.
SOAK_FDS = "5000"
RUN_TIMEOUT = 600


def _report(backend: str, path: Path) -> dict[str, Any]:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "fdsend_conformance",
            "-p",
            "no:cacheprovider",
            "-q",
            "-n",
            "2",
            f"--backend={backend}",
            f"--conformance-report={path}",
        ],
        env={**os.environ, "FDSEND_SOAK_FDS": SOAK_FDS},
        stdout=subprocess.DEVNULL,
        timeout=RUN_TIMEOUT,
        check=False,
        cwd=path.parent,
    )
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.mark.timeout(2 * RUN_TIMEOUT)
def test_reference_driver_has_the_references_statuses(tmp_path: Path):
    in_process = _report("reference", tmp_path / "reference.json")
    driven = _report("reference-driver", tmp_path / "reference-driver.json")
    theirs = {clause["id"]: clause for clause in driven["clauses"]}
    python_only = Feature.LACKING[Feature.PYTHON_API]
    differences = []
    protocol_unsupported = []
    for clause in in_process["clauses"]:
        other = theirs[clause["id"]]
        if other["status"] == clause["status"]:
            continue
        reasons = set(other["skips"].values())
        if other["status"] == "UNSUPPORTED" and all(python_only in r for r in reasons):
            protocol_unsupported.append(clause["id"])
            continue
        differences.append(f"{clause['id']}: {clause['status']} in-process, {other['status']}")
    assert not differences, differences
    # What the protocol cannot take, and nothing else: Python's argument
    # types, a socket object's timeout, ValueError for a negative count,
    # Python signal handlers.
    assert sorted(protocol_unsupported) == [
        "COERCE-1",
        "COERCE-2",
        "COERCE-3",
        "ERR-6",
        "ERR-7",
        "FAULT-1",
        "FAULT-2",
    ]
