#!/usr/bin/env bash
# docs/heroku.md's controller config, as written: the TOML block under "The controller's
# config" is loaded by pgcutoverctl from a directory laid out as the doc says (the RDS CA bundle
# at vendor/pgcutover/rds-global-bundle.pem), with DATABASE_URL on a Heroku-shaped source and
# PGCUTOVER_TARGET_URL (no TLS options of its own) on an RDS-shaped target. `status` must read
# the file, reach both databases with the TLS the block asks for (verify-full against that
# bundle), and name every listed proxy it cannot reach, here the dynos' Private Space names.
. "$(dirname "$0")/../lib/proxy_harness.bash"

CTL_BIN=${PGCUTOVER_CTL_BIN:-$(dirname "$PROXY_BIN")/../control/pgcutoverctl}
[ -x "$CTL_BIN" ] || fail "pgcutoverctl not built: $CTL_BIN"
pgc_start src heroku >/dev/null
pgc_start tgt rds >/dev/null

work=$PROXY_DIR/app
mkdir -p "$work/vendor/pgcutover"
awk '/^## The controller.s config/ {sec = 1} sec && /^```toml/ {on = 1; next}
     on && /^```/ {exit} on' "$top/docs/heroku.md" >"$work/pgcutover.toml"
grep -q '^\[\[control.proxies\]\]' "$work/pgcutover.toml" ||
  fail "docs/heroku.md has no controller config block: $(cat "$work/pgcutover.toml")"
cp "$TGT_CA_FILE" "$work/vendor/pgcutover/rds-global-bundle.pem"

export DATABASE_URL=$SRC_URL
export PGCUTOVER_TARGET_URL=${TGT_URL%%\?*} # the block's own sslmode and sslrootcert must do
export PGCUTOVER_ADMIN_TOKEN="tok-$$-$RANDOM"
set +e
(cd "$work" && timeout 120 "$CTL_BIN" status -c pgcutover.toml --connect-timeout 5 --json) \
  >"$PROXY_DIR/status.json" 2>"$PROXY_DIR/status.err"
rc=$?
set -e
[ "$rc" -ne 2 ] || fail "status could not use the documented config (exit 2): $(cat "$PROXY_DIR/status.err")"
/usr/bin/python3 - "$PROXY_DIR/status.json" "$SRC_PORT" "$TGT_PORT" <<'PY' ||
import json, sys
doc = json.load(open(sys.argv[1]))
src, tgt = sys.argv[2], sys.argv[3]
# Connected, the database is shown as user@host:port/db; unreachable, as the error.
assert doc["source"].endswith(":%s/app" % src), "source not reached: %s" % doc["source"]
assert doc["target"].endswith(":%s/app" % tgt), "target not reached: %s" % doc["target"]
urls = [p["admin_url"] for p in doc["proxies"]]
assert urls == ["http://1.web.myapp.app.localspace:6480",
                "http://2.web.myapp.app.localspace:6480"], urls
assert all(p["state"] == "unreachable" for p in doc["proxies"]), doc["proxies"]
PY
  fail "status with the documented config: $(cat "$PROXY_DIR/status.json" "$PROXY_DIR/status.err")"
pass "the block loads; both databases reached (the target with verify-full against the bundle)"
pass "both listed dynos are shown, unreachable from here, by their Private Space names"

# The target's TLS comes from the block: with the bundle missing, the target is refused.
rm "$work/vendor/pgcutover/rds-global-bundle.pem"
(cd "$work" && timeout 120 "$CTL_BIN" status -c pgcutover.toml --connect-timeout 5 --json) \
  >"$PROXY_DIR/status2.json" 2>/dev/null || true
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if "rds-global-bundle.pem" in d["target"] else 1)' \
  "$PROXY_DIR/status2.json" || fail "without the bundle the target was not refused: $(cat "$PROXY_DIR/status2.json")"
pass "without the CA bundle the target is refused, naming the file"
pass "docs/heroku.md's controller config"
