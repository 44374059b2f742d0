"""Shared by the Python integration tests (imported, not a test itself: CTest runs test_*.py).

Where the tree and the binaries are, the ok/fail output every test prints, the one way tests
wait (a predicate polled with a deadline, never a bare sleep), and tests/lib/pgcluster.sh as
a command that answers key=value records.
"""
import os
import socket
import subprocess
import sys
import time

TOP = os.environ.get("PGCUTOVER_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "../.."))
PROXY_BIN = os.environ.get("PGCUTOVER_PROXY_BIN") or os.path.join(TOP, "build/proxy/pgcutover-proxy")
PGCLUSTER = os.path.join(TOP, "tests/lib/pgcluster.sh")
# PostgreSQL's tools, then Debian's python3 and tools, first for every child
# (tests/lib/pgcluster.sh says why).
_PG_BIN = os.environ.get("PGCUTOVER_PG_BIN", "/usr/lib/postgresql/15/bin")
if not os.environ.get("PATH", "").startswith(_PG_BIN + ":/usr/bin:"):
    os.environ["PATH"] = _PG_BIN + ":/usr/bin:" + os.environ.get("PATH", "")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    raise SystemExit(1)


_STARTED = time.monotonic()


def ok(msg):
    """Prints a passed check and when it passed (seconds since the test started)."""
    print("ok - %s [%.1f s]" % (msg, time.monotonic() - _STARTED), flush=True)


def wait_until(seconds, predicate, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    fail("timed out waiting for " + what)


def pgcluster(*args):
    out = subprocess.run(["bash", PGCLUSTER, *args], check=True, capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def port_accepting(port):
    """True when something accepts TCP connections on 127.0.0.1:<port> right now."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False
