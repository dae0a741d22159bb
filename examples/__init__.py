"""Runnable examples of ignite_cache (``scripts/demo`` serves ``examples.app``)."""
