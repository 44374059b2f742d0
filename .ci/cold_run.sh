#!/usr/bin/env bash
# Measures `.ci/run` as a cold machine runs it: a fresh Debian 12 (debootstrap, minbase: no
# compiler, no packages, no ccache, no test-time data) in a chroot on this machine, with a fresh
# clone of this repository's HEAD in it. tests/run.sh installs everything itself, so the time
# printed covers the packages, the three builds and every suite. Needs root (debootstrap,
# chroot, mounts) and the network path to Debian's archive and the npm registry this machine
# has. The chroot shares this machine's kernel and cores: nothing else should run meanwhile.
#
#   .ci/cold_run.sh [DIR]        DIR: where the chroot goes (default /var/tmp/pgcutover-cold;
#                                emptied first); the log is DIR.log
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
root=${1:-/var/tmp/pgcutover-cold}
case "$root" in /*/*) ;; *) echo "cold_run.sh: '$root': give a directory two levels below / at least (it is emptied)" >&2; exit 2 ;; esac
log=$root.log
[ "$(id -u)" -eq 0 ] || { echo "cold_run.sh: run as root (debootstrap, chroot, mounts)" >&2; exit 2; }
if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

mounts=(proc sys dev dev/pts dev/shm run)
unmount_all() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    mountpoint -q "$root/${mounts[$i]}" && umount "$root/${mounts[$i]}"
  done
  return 0
}
trap unmount_all EXIT
[ -d "$root" ] && { unmount_all; rm -rf "$root"; }

echo "== cold run: debootstrap bookworm (minbase) into $root"
debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$log" 2>&1 ||
  { tail -n 20 "$log" >&2; exit 1; }
# The machine's own apt sources and trusted certificates (a registry behind a proxy with its own
# CA works here as on the machine); nothing of pgcutover's.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  rm -f "$root/etc/apt/sources.list"
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
fi
mkdir -p "$root/etc/ssl/certs" "$root/usr/local/share/ca-certificates"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/" 2>/dev/null || true
cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
[ -f /etc/npmrc ] && cp /etc/npmrc "$root/etc/npmrc"
git clone -q "$top" "$root/src"

mount --bind /proc "$root/proc"
mount --bind /sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs shm "$root/dev/shm"
mount -t tmpfs run "$root/run"

echo "== cold run: .ci/run in the chroot (log: $log)"
started=$SECONDS
status=0
chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
  SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  /bin/bash -c 'cd /src && .ci/run' >>"$log" 2>&1 || status=$?
sed -n '/^== tests: time per stage/,$p' "$log"
echo "== cold run: .ci/run exited $status after $((SECONDS - started)) s (wall, from a bare Debian 12)"
exit $status
