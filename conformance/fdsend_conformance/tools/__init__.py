"""The command lines on top of the suite, what a user of the installed suite runs.

- ``cli``: ``fdsend-conformance`` (run, gate, list), handing the others their arguments;
- ``bench``: every backend against raw floors measured in the same run;
- ``soak``: the soak's command line (the soak itself is ``harness.soak``);
- ``compare``: the clauses that changed between two reports;
- ``vm`` and ``kernel_fetch``: the suite on another kernel, in a VM;
- ``kernels``: the clause-by-kernel matrix from kernel reports.

What only this repository needs (regenerating docs/compatibility.md, the
PyPI survey, the bench's targets) is in conformance/upkeep/, not shipped.
"""
