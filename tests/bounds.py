"""Time bounds used by tests. They are hang guards, not speed tests (speed lives in benchmarks/).

A guard catches what it is for, an unbounded parse (catastrophic backtracking, quadratic scans of 1 MB input,
an exponent that never finishes), which takes minutes to forever; it must not fail because a 2-core CI machine
is busy. Measured speeds are in docs/benchmarks.md.
"""

HANG_GUARD_S = 10.0
