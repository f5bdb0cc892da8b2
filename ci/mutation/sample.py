"""A cosmic-ray filter: keep every Nth pending mutant in source order, skip the rest.

A deterministic sample for a machine that cannot run them all: the same
source and N always keep the same mutants, spread evenly over the module.
Run it after ``skip_annotations.py``::

    python ci/mutation/sample.py SESSION.sqlite N
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import WorkerOutcome, WorkResult


def keep_every(db: WorkDB, every: int) -> int:
    """Mark all pending mutants but every ``every``-th as skipped; how many are kept."""
    order = sorted(
        db.pending_work_items,
        key=lambda item: [
            (str(m.module_path), tuple(m.start_pos), m.operator_name, m.occurrence)
            for m in item.mutations
        ],
    )
    dropped = [item.job_id for index, item in enumerate(order) if index % every]
    if dropped:
        result = WorkResult(
            output=f"not in the 1-in-{every} sample", worker_outcome=WorkerOutcome.SKIPPED
        )
        db.set_multiple_results(dropped, result)
    return len(order) - len(dropped)


def main(argv: Sequence[str] | None = None) -> int:
    """Sample one session file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("session", help="the cosmic-ray session (.sqlite)")
    parser.add_argument("every", type=int, help="keep one mutant in this many")
    options = parser.parse_args(argv)
    with use_db(options.session, WorkDB.Mode.open) as db:
        kept = keep_every(db, options.every)
    print(f"{options.session}: {kept} mutants kept (1 in {options.every})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
