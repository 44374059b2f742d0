"""Shared by the Python driver workloads (psycopg_workload.py, asyncpg_workload.py): the
environment driver_harness.bash sets, a check that counts, and the expected values of the
common work (see driver_harness.bash for what every workload does)."""
import os
import sys

HOST = os.environ["DRV_HOST"]
PORT = int(os.environ["DRV_PORT"])
USER = os.environ["DRV_USER"]
PASSWORD = os.environ["DRV_PASSWORD"]
DBNAME = os.environ["DRV_DBNAME"]
CLIENTS = int(os.environ.get("DRV_CLIENTS", "16"))
ROUNDS = int(os.environ.get("DRV_ROUNDS", "5"))
MODE = os.environ.get("DRV_MODE", "transaction")
RECONNECT = os.environ.get("DRV_RECONNECT", "0") == "1"
COPY_ROWS = 5


class Checks:
    """Counts checks; the first wrong result raises with what was expected."""

    def __init__(self):
        self.passed = 0

    def eq(self, got, want, what):
        if got != want:
            raise AssertionError(f"{what}: got {got!r}, want {want!r}")
        self.passed += 1


def copy_payload(w, r, i):
    return f"{w}-{r}-{i}"


def report(driver, checks, failures):
    for f in failures[:5]:
        print(f"FAIL: {f}", file=sys.stderr)
    if failures:
        print(f"{driver}: {len(failures)} worker(s) failed", file=sys.stderr)
        raise SystemExit(1)
    print(f"{driver}: {checks} checks passed")
