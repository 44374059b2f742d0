"""Client for test_schema_change.sh: a prepared SELECT * whose table gains a column while the
statement is prepared (and shared) on the proxy's server connection."""
import os
import sys

import psycopg
from psycopg import errors

proxy = dict(host=os.environ["DRV_HOST"], port=int(os.environ["DRV_PORT"]), user=os.environ["DRV_USER"],
             password=os.environ["DRV_PASSWORD"], dbname=os.environ["DRV_DBNAME"], sslmode="disable")
query = "SELECT * FROM drv_scratch WHERE worker = %s"
with psycopg.connect(**proxy, autocommit=True, prepare_threshold=0) as a, \
        psycopg.connect(**proxy, autocommit=True, prepare_threshold=0) as b:
    for conn in (a, b):
        row = conn.execute(query, (1,)).fetchone()
        assert row == (1, 0, 0, "before"), row
    with psycopg.connect(os.environ["DRV_DIRECT_DSN"], autocommit=True) as direct:
        direct.execute("ALTER TABLE drv_scratch ADD COLUMN extra int DEFAULT 7")
    # PostgreSQL refuses the old plan once (0A000), as it would in one session. After that the
    # proxy must not keep handing out the stale shared statement, to this client or another.
    for name, conn in (("a", a), ("b", b)):
        for attempt in range(3):
            try:
                row = conn.execute(query, (1,)).fetchone()
                break
            except errors.FeatureNotSupported as e:
                print(f"client {name} attempt {attempt}: {e.sqlstate} {e}")
        else:
            sys.exit(f"client {name}: still 'cached plan must not change result type' after 3 attempts")
        assert row == (1, 0, 0, "before", 7), row
print("schema change: both clients read the new column")
