"""Deliberately good and broken reproductions for the runner's tests (REPRO_EXTRA_PAPERS)."""
