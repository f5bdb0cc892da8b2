"""An xdist worker's usage error, carried to the controller as a failed collection.

A worker's exceptions never reach the controller: a ``pytest.UsageError``
raised while a worker collects would only end that worker. So the worker
reports a failed collection of the suite with the error's message instead,
runs no test, and the controller, which shows that report like any failed
collection, gives the run a usage error's exit status.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["is_refusal", "refuse_on_worker"]

#: The attribute that marks a worker's failed collection as the plugin's usage error.
_REFUSAL_ATTRIBUTE = "fdsend_refusal"


def refuse_on_worker(
    config: pytest.Config, items: list[pytest.Item], folder: Any, message: str
) -> None:
    """Report ``message`` as the failed collection of the node ``folder`` and run nothing.

    ``folder``: the suite's folder node among the collected ones, or None.
    """
    nodeid = folder.nodeid if folder is not None else ""
    refusal = pytest.CollectReport(nodeid, "failed", message, [])
    setattr(refusal, _REFUSAL_ATTRIBUTE, True)  # travels to the controller with the report
    config.hook.pytest_collectreport(report=refusal)
    items.clear()


def is_refusal(report: pytest.CollectReport) -> bool:
    """Whether ``report`` is a worker's usage error (see :func:`refuse_on_worker`)."""
    return report.failed and bool(getattr(report, _REFUSAL_ATTRIBUTE, False))
