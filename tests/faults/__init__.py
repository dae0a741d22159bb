"""Fault injection against private Redis servers, clusters, Sentinel and SQLite files.

Everything here talks to 127.0.0.1 only: the servers are ``tests/support`` children of
the test process. ``harness`` holds what the tests share (the session's cluster and
Sentinel set-up, the load generator and the figures it records); ``docs/faults.md``
explains the bounds asserted here and carries the figures of the last full run.
"""
