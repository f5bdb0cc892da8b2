"""A cosmic-ray filter: mark every mutant inside a type annotation as skipped.

fdsend's modules start with ``from __future__ import annotations``, so an
annotation is a string that nothing evaluates at run time: a mutant there
(``int | None`` made ``int - None``, say) changes no behaviour and no test can
kill it. This is one rule for all of them instead of a pragma on each line.
Run it on a session after ``cosmic-ray init``, as cosmic-ray's own
``cr-filter-*`` tools are run::

    python ci/mutation/skip_annotations.py SESSION.sqlite
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import WorkerOutcome, WorkResult

#: (line, column) as cosmic-ray gives positions: lines from 1, columns in characters.
Position = tuple[int, int]


def _annotations(tree: ast.Module) -> Iterator[ast.expr]:
    """Every annotation node: arguments, returns and annotated assignments."""
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            yield node.annotation
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


def annotation_spans(source: str) -> list[tuple[Position, Position]]:
    """The (start, end) of each annotation in ``source``.

    Refuses a module without ``from __future__ import annotations``: there an
    annotation is evaluated, and a mutant in it may well be killed.
    """
    tree = ast.parse(source)
    future = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    if not future:
        raise SystemExit("no `from __future__ import annotations`: its annotations run")
    lines = source.splitlines()

    def column(line: int, byte_offset: int) -> int:  # ast counts UTF-8 bytes
        return len(lines[line - 1].encode()[:byte_offset].decode())

    spans = []
    for node in _annotations(tree):
        end_line = node.end_lineno or node.lineno  # always set by ast.parse
        start = (node.lineno, column(node.lineno, node.col_offset))
        end = (end_line, column(end_line, node.end_col_offset or 0))
        spans.append((start, end))
    return spans


def skip_annotation_mutants(db: WorkDB) -> int:
    """Mark the pending mutants that lie inside an annotation as skipped; how many."""
    spans: dict[Path, list[tuple[Position, Position]]] = {}
    skipped = []
    for item in db.pending_work_items:
        for mutation in item.mutations:
            path = Path(mutation.module_path)
            if path not in spans:
                spans[path] = annotation_spans(path.read_text(encoding="utf-8"))
            start, end = tuple(mutation.start_pos), tuple(mutation.end_pos)
            if any(low <= start and end <= high for low, high in spans[path]):
                skipped.append(item.job_id)
                break
    if skipped:
        result = WorkResult(output="in a type annotation", worker_outcome=WorkerOutcome.SKIPPED)
        db.set_multiple_results(skipped, result)
    return len(skipped)


def main(argv: Sequence[str] | None = None) -> int:
    """Filter one session file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("session", help="the cosmic-ray session (.sqlite)")
    options = parser.parse_args(argv)
    with use_db(options.session, WorkDB.Mode.open) as db:
        count = skip_annotation_mutants(db)
    print(f"{options.session}: {count} mutants in type annotations skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
