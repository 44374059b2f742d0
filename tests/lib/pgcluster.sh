#!/usr/bin/env bash
# Throwaway PostgreSQL clusters for tests, benchmarks and the demo: a Heroku-shaped source, an
# RDS-shaped target, a plain one, and streaming replicas of any of them. Every cluster gets its
# own directory, a free loopback port and its own TLS chain, so tests can run in parallel.
#
# Sourced (bash):                        . tests/lib/pgcluster.sh
#   pgc_start <name> <shape> [options]   start a cluster; exports <NAME>_PORT, <NAME>_DIR,
#                                        <NAME>_URL (app role, TLS), <NAME>_ADMIN_URL (superuser
#                                        over the unix socket, for the test's own set-up only),
#                                        <NAME>_CA_FILE, <NAME>_HOST, <NAME>_APP_USER,
#                                        <NAME>_APP_PASSWORD, <NAME>_DATA_DIR, <NAME>_SOCKET_DIR,
#                                        <NAME>_LOG_FILE (NAME is <name> upper-cased).
#                                        Installs `trap pgc_stop_all EXIT` if no EXIT trap is set;
#                                        a script with its own EXIT trap must call pgc_stop_all.
#   pgc_start_replica <name> <primary>   streaming replica of a started cluster (pg_basebackup
#                                        -R), same shape, roles and CA; waits until it streams.
#   pgc_promote <name>                   promote a replica and wait until it accepts writes.
#   pgc_stop <name>                      stop immediately and delete the cluster's directory.
#   pgc_stop_all                         stop every cluster this shell started, delete the run's
#                                        base directory.
#   pgc_psql <name> [psql args]          psql as the app role over TCP with the shape's sslmode.
#   pgc_admin_psql <name> [psql args]    psql as the superuser over the unix socket.
#   pgc_get <name> <key>                 one value of the cluster (keys as printed by `start`).
#   pgc_make_tls <dir> [label]           test CA + server cert for localhost/127.0.0.1 in <dir>
#                                        (ca.crt, ca.key, server.crt, server.key); for proxies.
#   pgc_free_port                        a loopback port free right now, below the kernel's
#                                        ephemeral range, not handed out lately.
#   pgc_wait_until <seconds> <command...>
#                                        runs <command> until it succeeds (0) or <seconds>
#                                        pass (1), every 0.1 s for a second then every 0.25 s:
#                                        the way scripts wait, never a bare sleep.
#
# As a command (what the C++ fixture tests/lib/pg_cluster.h runs; prints key=value lines):
#   pgcluster.sh start --shape heroku|rds|plain [--name N] [--base DIR] [--owner-pid PID]
#                [--logical] [--durable] [--max-connections N] [--app-user U] [--set GUC=VALUE]...
#   pgcluster.sh replica --primary-dir DIR [--name N] [--base DIR] [--owner-pid PID]
#   pgcluster.sh promote --dir DIR
#   pgcluster.sh stop --dir DIR
#   pgcluster.sh stop-all --base DIR     every cluster under DIR, then DIR itself
#   pgcluster.sh env --dir DIR
#   pgcluster.sh tls --dir DIR [--label L]
#   pgcluster.sh free-port
#
# Shapes:
#   heroku  SSL on, TCP only via hostssl + scram-sha-256 (hostnossl is rejected). App role
#           NOSUPERUSER NOREPLICATION NOCREATEROLE NOCREATEDB, owns database `app`, which has
#           citext, hstore and pg_stat_statements. wal_level=replica, as on Heroku. --logical
#           gives wal_level=logical and REPLICATION to the app role (for the logical method).
#   rds     SSL on (hostssl only, like rds.force_ssl=1), the URL uses sslmode=verify-full with
#           the cluster's CA. wal_level=logical. App role NOSUPERUSER with CREATEDB,
#           CREATEROLE, pg_monitor and pg_signal_backend (RDS's master user in spirit), owns `app`.
#           CREATE SUBSCRIPTION needs superuser on PostgreSQL 15 (RDS grants it through
#           rds_superuser): tests do it through the ADMIN URL rather than making the app role a
#           superuser, so a superuser-only step in pgcutoverctl cannot hide behind the app role.
#   plain   no TLS, trust on 127.0.0.1; for quick tests.
#
# Options: --logical (see heroku), --durable (fsync on; default off for speed),
#   --max-connections N (default 200), --app-user U (default app), --set GUC=VALUE (repeatable),
#   --owner-pid PID (command mode; default: the caller): a watchdog stops the cluster when PID
#   exits, so a crashed or killed test leaks no server. 0 disables the watchdog (demo --keep).
#   Sourced, the owner is the sourcing shell ($$) unless PGC_OWNER_PID says otherwise; set
#   PGC_BASE beforehand to choose the run directory (it is then left for the caller to remove).
#
# Servers run as the unprivileged user ${PGCUTOVER_PG_USER:-pgcutover} when invoked as root
# (PostgreSQL refuses root), as the current user otherwise. The superuser is `postgres`,
# reachable only over the cluster's unix socket, with peer authentication mapped from the
# server user and from the user who started the cluster (root in CI).
#
# Every function that changes anything runs in command mode (a child bash with errexit, whose
# exit status is checked): bash ignores `set -e` inside functions called from a condition, so
# the sourced wrappers below only spawn the command and export its answer.

PGC_SELF=$(readlink -f "${BASH_SOURCE[0]}")
# Debian's tools first: everything the tests use comes from apt (deploy/bootstrap.sh). A
# python3 found earlier on PATH, such as a pyenv shim, lacks Debian's psycopg and costs ~0.4 s of
# CPU per call (measured: 5 calls 2.25 s against 0.22 s), which wait loops and JSON checks pay
# hundreds of times per test.
PGC_PG_BIN=${PGCUTOVER_PG_BIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$PGC_PG_BIN/postgres" ] && command -v pg_config >/dev/null; then
  PGC_PG_BIN=$(pg_config --bindir)
fi
# PostgreSQL's own directory before /usr/bin: Debian's /usr/bin/psql and pgbench are pg_wrapper,
# a Perl script that picks a version before running the real tool, 30 ms of CPU per call
# (measured: 20 calls of `psql --version` 0.71 s through it, 0.10 s direct), paid by every
# poll of every wait loop.
case ":$PATH:" in :$PGC_PG_BIN:/usr/bin:*) ;; *) export PATH=$PGC_PG_BIN:/usr/bin:$PATH ;; esac
PGC_PG_USER=${PGCUTOVER_PG_USER:-pgcutover}
PGC_SUPERUSER=postgres
PGC_START_ATTEMPTS=5  # fresh ports tried when another process takes ours first
PGC_READY_TIMEOUT=60  # seconds to wait for a server, a replica or a promotion
# Sourced mode: name -> directory of the clusters this shell started, and the per-run directory
# holding them (made on first use). Sourcing the file twice keeps them.
if ! declare -p PGC_DIRS >/dev/null 2>&1; then declare -gA PGC_DIRS=(); fi
PGC_BASE=${PGC_BASE:-}
PGC_BASE_OWNED=${PGC_BASE_OWNED:-0}

PGC__UMASK=$(umask)

pgc__die() {
  echo "pgcluster: $*" >&2
  return 1
}

pgc__is_root() { [ "$EUID" -eq 0 ]; }

# The OS user that owns the data directories and runs the servers.
pgc__server_user() {
  if pgc__is_root; then echo "$PGC_PG_USER"; else id -un; fi
}

# Runs a command as the server user, from a directory that user can enter (initdb and pg_ctl
# complain when the caller's cwd, e.g. /root, is unreadable to them).
pgc__as_pg() {
  if pgc__is_root; then
    (cd / && runuser -u "$PGC_PG_USER" -- "$@")
  else
    (cd / && "$@")
  fi
}

pgc_free_port() {
  # The kernel may offer a port again as soon as the probe socket closes, before the server
  # meant for the first one has bound it (a proxy port picked, then a cluster started on the
  # same port; or two tests running side by side each picking it). Ports handed out to this
  # test ($$: the same in every subshell) are skipped, and so are the ports handed out to any
  # test on this machine in the last 15 minutes (a shared list, under a lock). Ports come from
  # below the kernel's ephemeral range: a port from inside it could be given to an outgoing
  # connection (any client on the machine) between the probe and the server's bind, which
  # happened to a proxy in a full suite run ("port ... is already in use").
  local used="${TMPDIR:-/tmp}/pgcutover-ports.$$" recent="${TMPDIR:-/tmp}/pgcutover-ports.recent"
  local port
  port=$(/usr/bin/python3 -c 'import fcntl, os, random, socket, sys, time
used_path, recent_path = sys.argv[1], sys.argv[2]
try:
    ephemeral_low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    ephemeral_low = 32768
low = 20000 if ephemeral_low > 22000 else None  # else: whatever the kernel offers
try:
    used = set(open(used_path).read().split())
except OSError:
    used = set()
try:
    fd = os.open(recent_path, os.O_RDWR | os.O_CREAT, 0o666)
except OSError:  # another user'"'"'s list: this test keeps only its own
    fd = os.open(os.devnull, os.O_RDWR)
with os.fdopen(fd, "r+") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    now = time.time()
    recent = {}
    for line in f.read().split("\n"):
        parts = line.split()
        if len(parts) == 2 and now - float(parts[1]) < 900:
            recent[parts[0]] = parts[1]
    for _ in range(200):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", random.randrange(low, ephemeral_low) if low else 0))
        except OSError:  # taken by a listener
            s.close()
            continue
        port = str(s.getsockname()[1])
        s.close()
        if port not in used and port not in recent:
            break
    else:  # 200 taken in a row: let the kernel choose
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
        s.close()
    recent[port] = str(now)
    try:
        f.seek(0)
        f.truncate()
        f.write("".join(f"{p} {t}\n" for p, t in recent.items()))
    except OSError:
        pass  # /dev/null in place of another user'"'"'s list
print(port)' "$used" "$recent") || return 1
  echo "$port" >>"$used"
  echo "$port"
}

# Deadlines in microseconds since the epoch, from bash's own clock: a wait loop polls many times
# per second in every test, so its bookkeeping starts no process. <seconds> may have a fraction.
pgc__deadline() {
  local whole=${1%%.*} frac=000000
  [[ $1 != *.* ]] || frac=${1#*.}000000
  echo $((${EPOCHREALTIME/./} + ${whole:-0} * 1000000 + 10#${frac:0:6}))
}
pgc__before() { ((${EPOCHREALTIME/./} < $1)); }

# Test CA and a server certificate valid for localhost and 127.0.0.1, so clients can use
# sslmode=verify-full against a loopback server. EC keys: generated instantly.
pgc__make_tls() {
  local dir=$1 label=$2
  mkdir -p "$dir"
  (
    cd "$dir"
    umask 077
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
      -keyout ca.key -out ca.crt -days 30 -subj "/CN=pgcutover test CA ($label)" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
      -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out server.crt -days 30 -extfile server.ext 2>/dev/null
    rm -f server.csr server.ext ca.srl
    chmod 644 ca.crt server.crt
  ) || pgc__die "could not create TLS files in $dir"
}

# ---- the cluster record: cluster.env, the key=value lines `start` prints ----------------------

# The record is read and written in bash itself (no awk, mktemp or mv per key): a cluster start
# sets some twenty keys.
pgc__env_get() {
  local dir=$1 key=$2 line
  [ -f "$dir/cluster.env" ] || pgc__die "no cluster in $dir" || return 1
  while IFS= read -r line; do
    [[ $line != "$key="* ]] || printf '%s\n' "${line#"$key="}"
  done <"$dir/cluster.env"
}

# Adds key=value lines for keys the record does not have yet (a new cluster's, in one write).
pgc__env_add() {
  local dir=$1
  shift
  printf '%s\n' "$@" >>"$dir/cluster.env"
}

# Replaces every line of <key> (several for `setting`) by one line per remaining argument. The
# new record is written beside the old one and renamed over it, so a reader (the watchdog, a
# test) never sees half of it.
pgc__env_set() {
  local dir=$1 key=$2 line value tmp=$1/.env.$BASHPID
  shift 2
  {
    if [ -f "$dir/cluster.env" ]; then
      while IFS= read -r line; do
        [[ $line == "$key="* ]] || printf '%s\n' "$line"
      done <"$dir/cluster.env"
    fi
    for value in "$@"; do printf '%s=%s\n' "$key" "$value"; done
  } >"$tmp"
  [ "$PGC__UMASK" = 0022 ] || chmod 644 "$tmp" # readable by every test user, whatever the umask
  mv -f "$tmp" "$dir/cluster.env"
}

# ---- creating and running a cluster (command mode) -------------------------------------------

# A new, empty directory for cluster <name>, readable by the server user.
pgc__new_cluster_dir() {
  local name=$1 base=$2 dir
  if [ -n "$base" ]; then
    dir=$base/$name
    [ ! -e "$dir" ] || pgc__die "$dir already exists (cluster name used twice?)"
    mkdir -p "$dir"
  else
    dir=$(mktemp -d "/tmp/pgcutover-$name.XXXXXX")
  fi
  chmod 755 "$dir"
  echo "$dir"
}

# postgresql.conf include written from the cluster's record; rewritten on every start attempt
# because the port may change, and for replicas because pg_basebackup copied the primary's.
pgc__write_conf() {
  local dir=$1 port=$2 shape logical durable setting
  shape=$(pgc__env_get "$dir" shape)
  logical=$(pgc__env_get "$dir" logical)
  durable=$(pgc__env_get "$dir" durable)
  {
    echo "# Written by tests/lib/pgcluster.sh; rewritten on every start."
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $port"
    echo "unix_socket_directories = '$dir/sock'"
    echo "max_connections = $(pgc__env_get "$dir" max_connections)"
    echo "shared_buffers = 32MB"
    if [ "$durable" = 1 ]; then
      echo "fsync = on"
    else
      # Speed for tests that do not check durability; --durable restores both.
      echo "fsync = off"
      echo "full_page_writes = off"
    fi
    if [ "$shape" = rds ] || [ "$logical" = 1 ]; then
      echo "wal_level = logical"
    else
      echo "wal_level = replica" # Heroku: no logical decoding for customers
    fi
    echo "max_wal_senders = 10"
    echo "max_replication_slots = 10"
    echo "password_encryption = 'scram-sha-256'"
    if [ "$shape" != plain ]; then
      echo "ssl = on"
      echo "ssl_cert_file = '$dir/tls/server.crt'"
      echo "ssl_key_file = '$dir/tls/server.key'"
      # Heroku and RDS both preload it; the source has the extension installed.
      echo "shared_preload_libraries = 'pg_stat_statements'"
    fi
    echo "log_line_prefix = '%m [%p] %q%u@%d '"
    while IFS= read -r setting; do
      [ -n "$setting" ] || continue
      echo "${setting%%=*} = '$(printf '%s' "${setting#*=}" | sed "s/'/''/g")'"
    done < <(pgc__env_get "$dir" setting)
  } >"$dir/data/pgcutover.conf"
  chown "$(pgc__server_user)" "$dir/data/pgcutover.conf"
}

# pg_hba.conf: TCP only over TLS for the cloud shapes, and hostnossl rejected so a plaintext
# client gets "pg_hba.conf rejects connection ... no encryption", as from Heroku or from RDS
# with rds.force_ssl=1. The superuser exists only on the unix socket, for the harness's own
# work, with peer authentication mapped from the server user and the invoking user.
pgc__write_hba() {
  local dir=$1 shape=$2 me server_user
  me=$(id -un)
  server_user=$(pgc__server_user)
  {
    echo "# TYPE    DATABASE     USER        ADDRESS        METHOD"
    echo "local     all          $PGC_SUPERUSER    peer map=harness"
    echo "local     replication  $PGC_SUPERUSER    peer map=harness"
    if [ "$shape" = plain ]; then
      echo "host      all          all         127.0.0.1/32   trust"
      echo "host      replication  all         127.0.0.1/32   trust"
    else
      echo "hostssl   all          all         127.0.0.1/32   scram-sha-256"
      # Physical replication over TCP: RDS-like targets only (Heroku gives none). Logical
      # replication connections match the database column, not this keyword.
      if [ "$shape" = rds ]; then
        echo "hostssl   replication  all         127.0.0.1/32   scram-sha-256"
      fi
      echo "hostnossl all          all         0.0.0.0/0      reject"
      echo "hostnossl replication  all         0.0.0.0/0      reject"
    fi
  } >"$dir/data/pg_hba.conf"
  {
    echo "# MAPNAME  SYSTEM-USERNAME  PG-USERNAME"
    echo "harness    $server_user  $PGC_SUPERUSER"
    if [ "$me" != "$server_user" ]; then echo "harness    $me  $PGC_SUPERUSER"; fi
  } >"$dir/data/pg_ident.conf"
  chown "$server_user" "$dir/data/pg_hba.conf" "$dir/data/pg_ident.conf"
}

# The connection strings, derived from the record.
pgc__write_urls() {
  local dir=$1 shape port user pw ssl=""
  shape=$(pgc__env_get "$dir" shape)
  port=$(pgc__env_get "$dir" port)
  user=$(pgc__env_get "$dir" app_user)
  pw=$(pgc__env_get "$dir" app_password)
  case "$shape" in
    heroku) ssl="sslmode=require" ;; # what Heroku hands to applications: encrypted, unverified
    rds) ssl="sslmode=verify-full&sslrootcert=$dir/tls/ca.crt" ;;
    plain) ssl="sslmode=disable" ;;
  esac
  pgc__env_set "$dir" url "postgresql://$user:$pw@127.0.0.1:$port/app?$ssl"
  pgc__env_set "$dir" admin_url "postgresql://$PGC_SUPERUSER@/app?host=$dir/sock&port=$port"
}

pgc__log_tail() {
  echo "---- last lines of $1 ----" >&2
  tail -n 30 "$1" >&2 || true
  echo "----" >&2
}

# Starts the server in <dir> on a fresh port; retries with another port when some other process
# bound ours between pgc_free_port and the postmaster's bind (the one race we can lose).
pgc__start_server() {
  local dir=$1 attempt port log=$1/postgres.log
  for ((attempt = 1; attempt <= PGC_START_ATTEMPTS; attempt++)); do
    port=$(pgc_free_port)
    # Test hook: PGC_FIRST_PORT forces the first attempt onto a port, e.g. a taken one, to
    # exercise the retry below (test_harness.sh does).
    if [ "$attempt" -eq 1 ] && [ -n "${PGC_FIRST_PORT:-}" ]; then port=$PGC_FIRST_PORT; fi
    pgc__env_set "$dir" port "$port"
    pgc__write_conf "$dir" "$port"
    : >"$log"
    chown "$(pgc__server_user)" "$log"
    # -w: pg_ctl polls postmaster.pid until the server says "ready", bounded by -t.
    if pgc__as_pg "$PGC_PG_BIN/pg_ctl" -D "$dir/data" -l "$log" -w -t "$PGC_READY_TIMEOUT" \
      start >/dev/null 2>&1; then
      pgc__env_set "$dir" pid "$(head -n 1 "$dir/data/postmaster.pid")"
      pgc__wait_ready "$dir"
      return 0
    fi
    if grep -q 'could not bind IPv4 address "127.0.0.1": Address already in use' "$log"; then
      echo "pgcluster: port $port was taken meanwhile; retrying with another" >&2
      continue
    fi
    pgc__log_tail "$log"
    pgc__die "could not start the server in $dir"
  done
  pgc__log_tail "$log"
  pgc__die "no free port after $PGC_START_ATTEMPTS attempts"
}

# Confirms the TCP listener answers (pg_isready counts an authentication failure as "up").
pgc__wait_ready() {
  local dir=$1 port deadline
  port=$(pgc__env_get "$dir" port)
  deadline=$(pgc__deadline "$PGC_READY_TIMEOUT")
  until pg_isready -q -h 127.0.0.1 -p "$port" -t 2; do
    if ! pgc__before "$deadline"; then
      pgc__log_tail "$dir/postgres.log"
      pgc__die "server in $dir not ready after ${PGC_READY_TIMEOUT}s"
    fi
    sleep 0.1
  done
}

pgc__admin_conninfo() {
  echo "host=$1/sock port=$(pgc__env_get "$1" port) user=$PGC_SUPERUSER dbname=${2:-app}"
}

pgc__admin_sql() {
  local dir=$1 db=$2
  shift 2
  psql -X -q -v ON_ERROR_STOP=1 -d "$(pgc__admin_conninfo "$dir" "$db")" "$@"
}

# Polls an admin query until it prints <want>, bounded by PGC_READY_TIMEOUT.
pgc__wait_for_value() {
  local dir=$1 sql=$2 want=$3 what=$4 deadline got
  deadline=$(pgc__deadline "$PGC_READY_TIMEOUT")
  while :; do
    got=$(pgc__admin_sql "$dir" postgres -At -c "$sql" 2>/dev/null || true)
    [ "$got" != "$want" ] || return 0
    if ! pgc__before "$deadline"; then
      pgc__log_tail "$dir/postgres.log"
      pgc__die "$what: still '$got' after ${PGC_READY_TIMEOUT}s"
    fi
    sleep 0.1
  done
}

# A watchdog in its own session (a test runner killing the test's process group must not take
# it along) stops the cluster once <owner> has exited; after a normal stop it sees the record
# gone and leaves. Its stdio is /dev/null so nobody reading the caller's output waits on it.
pgc__start_watchdog() {
  local owner=$1 dir=$2
  [ "$owner" -gt 0 ] || return 0
  (cd / && exec setsid bash "$PGC_SELF" __watchdog "$owner" "$dir") </dev/null >/dev/null 2>&1 &
}

# True while <pid> exists and is not a zombie. Not `kill -0`: that fails with EPERM for an
# owner of another user (runuser, sudo), which would read as "exited".
pgc__alive() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

pgc__watchdog() {
  local owner=$1 dir=$2
  # A poll, not a synchronisation: the owner is not our child, so wait(2) cannot see it exit.
  while pgc__alive "$owner" && [ -f "$dir/cluster.env" ]; do sleep 1; done
  [ -f "$dir/cluster.env" ] || return 0
  pgc__stop_dir "$dir"
  # The owner is gone, so nobody adds clusters to its per-run base directory any more: the
  # last watchdog out removes it (rmdir fails harmlessly while a sibling is still there).
  local base
  base=$(dirname "$dir")
  if [ -f "$base/.pgcluster-base" ] && [ "$(ls -A "$base")" = .pgcluster-base ]; then
    rm -f "$base/.pgcluster-base"
    rmdir "$base" 2>/dev/null || true
  fi
}

pgc__stop_dir() {
  local dir=$1 pid
  [ -d "$dir" ] || return 0
  if [ -f "$dir/data/postmaster.pid" ]; then
    # Immediate: the directory is deleted next, so a shutdown checkpoint is wasted time.
    if ! pgc__as_pg "$PGC_PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop \
      >/dev/null 2>&1; then
      pid=$(pgc__env_get "$dir" pid 2>/dev/null || true)
      # Kill only a process that is still this cluster's postmaster, not a recycled pid.
      if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/data"; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
  fi
  rm -rf "$dir"
}

# Set by the commands that create a directory; the EXIT trap deletes it if they fail halfway.
PGC__HALF_MADE=""
pgc__cleanup_half_made() {
  if [ -n "$PGC__HALF_MADE" ]; then pgc__stop_dir "$PGC__HALF_MADE"; fi
}

pgc__check_name() {
  [[ "$1" =~ ^[A-Za-z][A-Za-z0-9_]*$ ]] || pgc__die "bad cluster name '$1' (letters, digits, _)"
}

# `start`: creates and starts a cluster; prints its record.
pgc__cmd_start() {
  local name=pg shape="" base="" owner=$PPID logical=0 durable=0 max_conn=200 app_user=app
  local -a settings=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --name) name=$2; shift 2 ;;
      --shape) shape=$2; shift 2 ;;
      --base) base=$2; shift 2 ;;
      --owner-pid) owner=$2; shift 2 ;;
      --logical) logical=1; shift ;;
      --durable) durable=1; shift ;;
      --max-connections) max_conn=$2; shift 2 ;;
      --app-user) app_user=$2; shift 2 ;;
      --set)
        [[ "$2" =~ ^[a-z_.]+=.*$ ]] || pgc__die "--set wants GUC=VALUE, got '$2'"
        settings+=("$2")
        shift 2
        ;;
      *) pgc__die "start: unknown option '$1'" ;;
    esac
  done
  case "$shape" in
    heroku | rds | plain) ;;
    source) shape=heroku ;;
    target) shape=rds ;;
    *) pgc__die "start: --shape must be heroku, rds or plain (got '$shape')" ;;
  esac
  pgc__check_name "$name"
  [[ "$app_user" =~ ^[a-z_][a-z0-9_]*$ ]] || pgc__die "bad app user '$app_user'"
  [ "$app_user" != "$PGC_SUPERUSER" ] || pgc__die "the app user cannot be $PGC_SUPERUSER"
  [[ "$max_conn" =~ ^[0-9]+$ ]] || pgc__die "bad --max-connections '$max_conn'"
  [ -x "$PGC_PG_BIN/initdb" ] || pgc__die "no PostgreSQL binaries in $PGC_PG_BIN"
  if pgc__is_root && ! id "$PGC_PG_USER" >/dev/null 2>&1; then
    pgc__die "user $PGC_PG_USER is missing (deploy/bootstrap.sh creates it)"
  fi

  local dir password server_user
  dir=$(pgc__new_cluster_dir "$name" "$base")
  PGC__HALF_MADE=$dir
  trap pgc__cleanup_half_made EXIT
  server_user=$(pgc__server_user)
  password=$(openssl rand -hex 16)
  pgc__env_set "$dir" name "$name"
  pgc__start_watchdog "$owner" "$dir" # after the record exists: the watchdog leaves without it
  local ca_file=""
  if [ "$shape" != plain ]; then
    pgc__make_tls "$dir/tls" "$name"
    ca_file=$dir/tls/ca.crt
  fi
  pgc__env_add "$dir" "shape=$shape" host=127.0.0.1 "dir=$dir" "data_dir=$dir/data" \
    "socket_dir=$dir/sock" "log_file=$dir/postgres.log" "logical=$logical" "durable=$durable" \
    "max_connections=$max_conn" "${settings[@]/#/setting=}" "app_user=$app_user" \
    "app_password=$password" app_db=app "admin_user=$PGC_SUPERUSER" primary_dir= \
    "ca_file=$ca_file"
  mkdir -p "$dir/sock"
  chown -R "$server_user" "$dir"

  pgc__initdb "$dir" "$durable"
  echo "include 'pgcutover.conf'" >>"$dir/data/postgresql.conf"
  pgc__write_hba "$dir" "$shape"
  pgc__start_server "$dir"
  pgc__write_urls "$dir"

  local attrs
  case "$shape" in
    rds) attrs="NOSUPERUSER CREATEDB CREATEROLE" ;;
    *) attrs="NOSUPERUSER NOCREATEDB NOCREATEROLE" ;; # Heroku: owner of its database, no more
  esac
  if [ "$logical" = 1 ]; then attrs+=" REPLICATION"; else attrs+=" NOREPLICATION"; fi
  pgc__admin_sql "$dir" postgres \
    -c "CREATE ROLE $app_user LOGIN PASSWORD '$password' $attrs" \
    -c "CREATE DATABASE app OWNER $app_user" >/dev/null
  if [ "$shape" = rds ]; then
    pgc__admin_sql "$dir" postgres -c "GRANT pg_monitor, pg_signal_backend TO $app_user" \
      >/dev/null
  fi
  if [ "$shape" = heroku ]; then
    pgc__admin_sql "$dir" app -c "CREATE EXTENSION citext" -c "CREATE EXTENSION hstore" \
      -c "CREATE EXTENSION pg_stat_statements" >/dev/null
  fi
  PGC__HALF_MADE=""
  cat "$dir/cluster.env"
}

# initdb for <dir>/data. A fresh data directory is the same bytes every time for the same
# binaries and arguments, and initdb is the costliest step of a start (about 1.3 s of CPU
# against 0.4 s to copy its result), so non-durable clusters copy a template made once per
# machine (${TMPDIR:-/tmp}/pgcutover-initdb-<hash of version and arguments>, owned by the
# server user; PGCUTOVER_INITDB_TEMPLATE=0 turns it off), then get a system identifier of
# their own (new_system_identifier.py, pg_resetwal). Durable clusters run initdb themselves: a
# copy would not be synced to disk.
pgc__initdb() { # <dir> <durable>
  local dir=$1 durable=$2 key template staging
  local -a args=(-U "$PGC_SUPERUSER" -E UTF8 --locale=C --auth-local=peer --auth-host=reject
    --no-instructions)
  if [ "$durable" = 1 ] || [ "${PGCUTOVER_INITDB_TEMPLATE:-1}" = 0 ]; then
    if ! pgc__as_pg "$PGC_PG_BIN/initdb" -D "$dir/data" "${args[@]}" >"$dir/initdb.log" 2>&1; then
      pgc__log_tail "$dir/initdb.log"
      pgc__die "initdb failed in $dir"
    fi
    return 0
  fi
  args+=(--no-sync)
  key=$({ "$PGC_PG_BIN/initdb" --version; pgc__server_user; printf '%s\n' "${args[@]}" no-wal; } |
    sha256sum | cut -c1-16)
  template=${TMPDIR:-/tmp}/pgcutover-initdb-$key
  if [ ! -f "$template/complete" ] || [ "$(stat -c %U "$template")" != "$(pgc__server_user)" ]; then
    # Made beside its final name and renamed into place: tests starting clusters at the same
    # moment each make one, the first rename wins and the others are removed.
    staging=$(mktemp -d "$template.XXXXXX")
    chown "$(pgc__server_user)" "$staging"
    if ! pgc__as_pg "$PGC_PG_BIN/initdb" -D "$staging/data" "${args[@]}" >"$dir/initdb.log" 2>&1; then
      pgc__log_tail "$dir/initdb.log"
      rm -rf "$staging"
      pgc__die "initdb failed in $staging"
    fi
    # Without its WAL segment (16 of its 39 MB): each copy gets new WAL from pg_resetwal below,
    # which reads only pg_control.
    rm -f "$staging"/data/pg_wal/0*
    touch "$staging/complete"
    if [ -e "$template" ] && [ ! -f "$template/complete" ]; then rm -rf "$template"; fi
    mv -T "$staging" "$template" 2>/dev/null || rm -rf "$staging"
  fi
  pgc__as_pg cp -a "$template/data" "$dir/data" ||
    pgc__die "could not copy the initdb template $template to $dir/data"
  # Each cluster its own system identifier, as two real servers have.
  pgc__as_pg /usr/bin/python3 "$(dirname "$PGC_SELF")/new_system_identifier.py" \
    "$dir/data/global/pg_control" &&
    pgc__as_pg "$PGC_PG_BIN/pg_resetwal" -D "$dir/data" >"$dir/initdb.log" 2>&1 ||
    pgc__die "could not give $dir/data a system identifier of its own: $(cat "$dir/initdb.log")"
}

# `replica`: streaming replica of the cluster in <primary-dir>, with the same shape, roles,
# passwords and CA (a Heroku follower or RDS read replica presents its primary's chain).
pgc__cmd_replica() {
  local name=replica primary="" base="" owner=$PPID key
  while [ $# -gt 0 ]; do
    case "$1" in
      --name) name=$2; shift 2 ;;
      --primary-dir) primary=$2; shift 2 ;;
      --base) base=$2; shift 2 ;;
      --owner-pid) owner=$2; shift 2 ;;
      *) pgc__die "replica: unknown option '$1'" ;;
    esac
  done
  [ -f "$primary/cluster.env" ] || pgc__die "replica: no cluster in '$primary'"
  pgc__check_name "$name"

  local dir
  dir=$(pgc__new_cluster_dir "$name" "$base")
  PGC__HALF_MADE=$dir
  trap pgc__cleanup_half_made EXIT
  cp "$primary/cluster.env" "$dir/cluster.env"
  pgc__start_watchdog "$owner" "$dir"
  for key in url admin_url port pid; do pgc__env_set "$dir" "$key"; done
  pgc__env_set "$dir" name "$name"
  pgc__env_set "$dir" dir "$dir"
  pgc__env_set "$dir" data_dir "$dir/data"
  pgc__env_set "$dir" socket_dir "$dir/sock"
  pgc__env_set "$dir" log_file "$dir/postgres.log"
  pgc__env_set "$dir" primary_dir "$primary"
  if [ -d "$primary/tls" ]; then
    cp -a "$primary/tls" "$dir/tls"
    pgc__env_set "$dir" ca_file "$dir/tls/ca.crt"
  fi
  mkdir -p "$dir/sock"
  chown -R "$(pgc__server_user)" "$dir"
  # Over the primary's socket as the superuser; -R writes primary_conninfo and standby.signal.
  if ! pgc__as_pg "$PGC_PG_BIN/pg_basebackup" -D "$dir/data" -R -X stream -c fast \
    -d "$(pgc__admin_conninfo "$primary" postgres)" >"$dir/basebackup.log" 2>&1; then
    pgc__log_tail "$dir/basebackup.log"
    pgc__die "pg_basebackup from $primary failed"
  fi
  pgc__start_server "$dir"
  pgc__write_urls "$dir"
  pgc__wait_for_value "$dir" "SELECT status FROM pg_stat_wal_receiver" streaming \
    "replica $name streaming"
  PGC__HALF_MADE=""
  cat "$dir/cluster.env"
}

pgc__cmd_promote() {
  local dir=$1
  pgc__as_pg "$PGC_PG_BIN/pg_ctl" -D "$dir/data" -w -t "$PGC_READY_TIMEOUT" promote \
    >/dev/null || pgc__die "promote of $dir failed"
  pgc__wait_for_value "$dir" "SELECT pg_is_in_recovery()" f "promotion of $dir"
  pgc__env_set "$dir" primary_dir ""
  cat "$dir/cluster.env"
}

pgc__main() {
  local cmd=${1:-help} dir="" label=pgcutover
  [ $# -eq 0 ] || shift
  case "$cmd" in
    start) pgc__cmd_start "$@" ;;
    replica) pgc__cmd_replica "$@" ;;
    stop | promote | env)
      if [ "${1:-}" != --dir ] || [ -z "${2:-}" ]; then pgc__die "usage: $cmd --dir DIR"; fi
      dir=$2
      case "$cmd" in
        stop) pgc__stop_dir "$dir" ;;
        promote) pgc__cmd_promote "$dir" ;;
        env) pgc__env_get "$dir" name >/dev/null && cat "$dir/cluster.env" ;;
      esac
      ;;
    stop-all)
      if [ "${1:-}" != --base ] || [ -z "${2:-}" ]; then pgc__die "usage: stop-all --base DIR"; fi
      for dir in "$2"/*/; do
        if [ -f "$dir/cluster.env" ]; then pgc__stop_dir "${dir%/}"; fi
      done
      # A directory the harness made (marked) goes entirely; one the caller chose only if empty.
      if [ -f "$2/.pgcluster-base" ]; then
        rm -rf "$2"
      else
        rmdir "$2" 2>/dev/null || pgc__die "$2 is not empty; left in place"
      fi
      ;;
    tls)
      while [ $# -gt 0 ]; do
        case "$1" in
          --dir) dir=$2; shift 2 ;;
          --label) label=$2; shift 2 ;;
          *) pgc__die "tls: unknown option '$1'" ;;
        esac
      done
      [ -n "$dir" ] || pgc__die "usage: tls --dir DIR [--label L]"
      pgc__make_tls "$dir" "$label"
      printf 'ca_file=%s\ncert_file=%s\nkey_file=%s\n' "$dir/ca.crt" "$dir/server.crt" \
        "$dir/server.key"
      ;;
    free-port) pgc_free_port ;;
    __watchdog) pgc__watchdog "$@" ;;
    help | -h | --help) sed -n '2,/^# Every function/p' "$PGC_SELF" | sed '$d; s/^# \{0,1\}//' ;;
    *) pgc__die "unknown command '$cmd' (try --help)" ;;
  esac
}

# ---- sourced API: thin wrappers that run the commands above and export their answers ---------

pgc__ensure_base() {
  if [ -z "$PGC_BASE" ]; then
    PGC_BASE=$(mktemp -d /tmp/pgcutover-test.XXXXXX) || return 1
    chmod 755 "$PGC_BASE"
    : >"$PGC_BASE/.pgcluster-base" # lets the watchdogs remove it if this shell is killed
    PGC_BASE_OWNED=1
  fi
  if [ -z "$(trap -p EXIT)" ]; then
    trap pgc_stop_all EXIT
    # A non-interactive bash killed by a signal it does not catch skips its EXIT trap.
    trap 'exit 130' INT
    trap 'exit 143' TERM
  fi
}

pgc__adopt() {
  local name=$1 record=$2 prefix line key
  PGC_DIRS[$name]=$PGC_BASE/$name
  prefix=${name^^}
  while IFS= read -r line; do
    key=${line%%=*}
    case "$key" in
      port | dir | data_dir | socket_dir | log_file | url | admin_url | ca_file | host | \
        app_user | app_password | shape)
        export "${prefix}_${key^^}=${line#*=}"
        ;;
    esac
  done <<<"$record"
}

pgc_start() {
  [ $# -ge 2 ] || pgc__die "usage: pgc_start <name> <shape> [options]" || return 1
  local name=$1 shape=$2 record started=${EPOCHREALTIME/./}
  shift 2
  [ -z "${PGC_DIRS[$name]:-}" ] || pgc__die "cluster '$name' already started" || return 1
  pgc__ensure_base || return 1
  record=$(bash "$PGC_SELF" start --name "$name" --shape "$shape" --base "$PGC_BASE" \
    --owner-pid "${PGC_OWNER_PID:-$$}" "$@") || return 1
  pgc__adopt "$name" "$record"
  echo "pgcluster: started $name ($(pgc_get "$name" shape)) on" \
    "127.0.0.1:$(pgc_get "$name" port) in ${PGC_DIRS[$name]} ($(pgc_seconds_since "$started") s)" >&2
}

pgc_start_replica() {
  [ $# -eq 2 ] || pgc__die "usage: pgc_start_replica <name> <primary>" || return 1
  local name=$1 primary=$2 record
  [ -n "${PGC_DIRS[$primary]:-}" ] || pgc__die "no cluster '$primary'" || return 1
  [ -z "${PGC_DIRS[$name]:-}" ] || pgc__die "cluster '$name' already started" || return 1
  pgc__ensure_base || return 1
  record=$(bash "$PGC_SELF" replica --name "$name" --primary-dir "${PGC_DIRS[$primary]}" \
    --base "$PGC_BASE" --owner-pid "${PGC_OWNER_PID:-$$}") || return 1
  pgc__adopt "$name" "$record"
  echo "pgcluster: started $name (replica of $primary) on 127.0.0.1:$(pgc_get "$name" port)" >&2
}

pgc__dir_of() {
  [ -n "${PGC_DIRS[$1]:-}" ] || pgc__die "no cluster '$1'" || return 1
  echo "${PGC_DIRS[$1]}"
}

pgc_get() {
  local dir
  dir=$(pgc__dir_of "$1") || return 1
  pgc__env_get "$dir" "$2"
}

pgc_promote() {
  local dir
  dir=$(pgc__dir_of "$1") || return 1
  bash "$PGC_SELF" promote --dir "$dir" >/dev/null
}

pgc_stop() {
  local dir
  dir=$(pgc__dir_of "$1") || return 1
  bash "$PGC_SELF" stop --dir "$dir" || return 1
  unset "PGC_DIRS[$1]"
}

pgc_stop_all() {
  local name
  rm -f "${TMPDIR:-/tmp}/pgcutover-ports.$$"
  for name in "${!PGC_DIRS[@]}"; do
    bash "$PGC_SELF" stop --dir "${PGC_DIRS[$name]}" || true
    unset "PGC_DIRS[$name]"
  done
  if [ "$PGC_BASE_OWNED" = 1 ] && [ -n "$PGC_BASE" ]; then
    rm -rf "$PGC_BASE"
    PGC_BASE=""
    PGC_BASE_OWNED=0
  fi
}

pgc_psql() {
  local name=$1 dir
  shift
  dir=$(pgc__dir_of "$name") || return 1
  psql -X -v ON_ERROR_STOP=1 -d "$(pgc__env_get "$dir" url)" "$@"
}

pgc_admin_psql() {
  local name=$1 dir
  shift
  dir=$(pgc__dir_of "$name") || return 1
  psql -X -v ON_ERROR_STOP=1 -d "$(pgc__admin_conninfo "$dir" app)" "$@"
}

# Seconds, to a tenth, since <microseconds since the epoch> (a ${EPOCHREALTIME/./} taken earlier).
pgc_seconds_since() {
  local ds=$(((${EPOCHREALTIME/./} - $1) / 100000))
  echo "$((ds / 10)).$((ds % 10))"
}

pgc_wait_until() {
  local deadline started=${EPOCHREALTIME/./} pause=0.1
  deadline=$(pgc__deadline "$1")
  shift
  until "$@"; do
    pgc__before "$deadline" || return 1
    # Every 0.1 s for the first second, then every 0.25 s: each poll is a psql or a python3
    # (a process and often a server backend), and the long waits' polls added up to a
    # noticeable share of the suite's CPU on 2 cores.
    ((${EPOCHREALTIME/./} - started < 1000000)) || pause=0.25
    sleep "$pause"
  done
}

pgc_make_tls() {
  bash "$PGC_SELF" tls --dir "$1" --label "${2:-pgcutover}" >/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  shopt -s inherit_errexit
  pgc__main "$@"
fi
