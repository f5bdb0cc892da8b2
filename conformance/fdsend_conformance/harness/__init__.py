"""What the suite's tests use: socket pairs, fd kinds, fd tables, forked children, raw
kernel calls, the blocked-call watchers and shared checks. Imports nothing from the plumbing."""
