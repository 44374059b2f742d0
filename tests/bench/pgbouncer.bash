# PgBouncer as the benchmarks run it beside the proxy: transaction pooling, SCRAM logins for
# the app role, the same pool size. Sourced through bench_run.bash (after pgcluster.sh).
#
#   start_pgbouncer <run dir> <db port> <password> <pool> <max_client_conn> <server sslmode> \
#     [extra [pgbouncer] lines]
# Sets bouncer_port and bouncer_pid, appends the started process to the caller's `pids`, and
# exits the script when PgBouncer does not come up within 15 s.
start_pgbouncer() {
  local run=$1 db_port=$2 password=$3 pool=$4 max_conn=$5 server_ssl=$6 extra=${7:-}
  bouncer_port=$(pgc_free_port)
  cat >"$run/pgbouncer.ini" <<EOT
[databases]
app = host=127.0.0.1 port=$db_port dbname=app user=app password=$password
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $run/userlist.txt
pool_mode = transaction
default_pool_size = $pool
max_client_conn = $max_conn
server_tls_sslmode = $server_ssl
logfile = $run/pgbouncer.log
pidfile = $run/pgbouncer.pid
$extra
EOT
  # Plaintext, as for the proxy. (PgBouncer then runs PBKDF2 with a fresh salt on every SCRAM
  # login, where the proxy derives one verifier per user at start: this shows in -C and in the
  # idle clients' login time. A SCRAM verifier in the userlist was refused by PgBouncer 1.18.)
  printf '"app" "%s"\n' "$password" >"$run/userlist.txt"
  chmod 644 "$run/pgbouncer.ini" "$run/userlist.txt"
  if [ "$(id -u)" -eq 0 ]; then
    # PgBouncer refuses root: it runs as the server user. setpriv, not runuser: runuser applies
    # the login limits (1024 descriptors here), and PgBouncer would stop accepting at ~1000
    # clients; setpriv keeps the caller's raised limit.
    chown "${PGCUTOVER_PG_USER:-pgcutover}" "$run"
    setpriv --reuid="${PGCUTOVER_PG_USER:-pgcutover}" --regid="${PGCUTOVER_PG_USER:-pgcutover}" \
      --init-groups pgbouncer "$run/pgbouncer.ini" >/dev/null 2>&1 &
  else
    pgbouncer "$run/pgbouncer.ini" >/dev/null 2>&1 &
  fi
  pids+=($!)
  pgc_wait_until 15 pg_isready -q -h 127.0.0.1 -p "$bouncer_port" -t 1 ||
    { cat "$run/pgbouncer.log" >&2; echo "bench: pgbouncer did not start" >&2; exit 1; }
  pgc_wait_until 15 test -s "$run/pgbouncer.pid" || { echo "bench: no pgbouncer pid file" >&2; exit 1; }
  bouncer_pid=$(cat "$run/pgbouncer.pid")
}
