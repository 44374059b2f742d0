#!/usr/bin/env python3
"""Installs the packages a package-lock.json pins into node_modules/, from the npm registry.

    deploy/npm_fetch.py DIR        DIR holds package-lock.json (lockfileVersion 2 or 3)

What `npm ci` does for a lock file without install scripts, without npm: Debian 12 packages npm
with about 300 node-* dependencies (80 s of installation on a cold machine, for the driver tests'
15 small packages). Each tarball is fetched from the registry (the lock file's `resolved`, else
$npm_config_registry or https://registry.npmjs.org), checked against the lock file's `integrity`
hash, and unpacked into its `node_modules/...` path. Nothing is written unless every package
was fetched and verified. Trusted CAs: the system's, plus $NODE_EXTRA_CA_CERTS (as for npm).
"""
import base64
import hashlib
import io
import json
import os
import shutil
import ssl
import sys
import tarfile
import tempfile
import urllib.request


def tarball_url(registry, path, entry):
    if entry.get("resolved"):
        return entry["resolved"]
    name = path.rsplit("node_modules/", 1)[1]  # "pg" or "@scope/pkg"
    base = name.rsplit("/", 1)[-1]
    return f"{registry.rstrip('/')}/{name}/-/{base}-{entry['version']}.tgz"


def verify(data, integrity, what):
    # Subresource-integrity form: "sha512-<base64>", possibly several, space-separated.
    for item in integrity.split():
        algo, _, expected = item.partition("-")
        if algo in ("sha512", "sha384", "sha256", "sha1"):
            got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
            if got != expected:
                sys.exit(f"npm_fetch: {what}: {algo} mismatch (lock file {expected}, got {got})")
            return
    sys.exit(f"npm_fetch: {what}: no usable integrity hash in the lock file ({integrity!r})")


def unpack(data, dest):
    # npm tarballs hold one top folder (mostly "package/"): its content goes to dest.
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) < 2 or not parts[1]:
                continue
            rel = os.path.normpath(parts[1])
            if rel.startswith("..") or os.path.isabs(rel):
                sys.exit(f"npm_fetch: refusing a path outside the package: {member.name}")
            target = os.path.join(dest, rel)
            if member.isdir():
                os.makedirs(target, exist_ok=True)
            elif member.isfile():
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with tar.extractfile(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(sys.argv) == 2 else 2
    top = sys.argv[1]
    with open(os.path.join(top, "package-lock.json")) as f:
        lock = json.load(f)
    packages = {p: e for p, e in lock.get("packages", {}).items() if p and not e.get("dev")}
    if not packages:
        sys.exit("npm_fetch: no packages in package-lock.json (lockfileVersion 2 or 3 needed)")
    registry = os.environ.get("npm_config_registry", "https://registry.npmjs.org")
    context = ssl.create_default_context()
    if os.environ.get("NODE_EXTRA_CA_CERTS"):
        context.load_verify_locations(os.environ["NODE_EXTRA_CA_CERTS"])
    staging = tempfile.mkdtemp(prefix="node_modules.", dir=top)
    try:
        for path, entry in sorted(packages.items()):
            url = tarball_url(registry, path, entry)
            try:
                with urllib.request.urlopen(url, context=context, timeout=60) as answer:
                    data = answer.read()
            except OSError as e:  # URLError, HTTPError, timeouts, TLS failures
                sys.exit(f"npm_fetch: {url}: {e}")
            verify(data, entry.get("integrity", ""), path)
            unpack(data, os.path.join(staging, path))
        final = os.path.join(top, "node_modules")
        shutil.rmtree(final, ignore_errors=True)
        os.rename(os.path.join(staging, "node_modules"), final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"npm_fetch: {len(packages)} packages into {os.path.join(top, 'node_modules')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
