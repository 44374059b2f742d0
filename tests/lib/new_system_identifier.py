#!/usr/bin/env python3
"""Gives a copied, cleanly shut down data directory a system identifier of its own.

tests/lib/pgcluster.sh copies one initdb result into every cluster it starts; without this,
every "Heroku" and "RDS" cluster of a test would report the same pg_control_system(). Writes a
random identifier into global/pg_control and its CRC-32C (found where it is stored: the bytes
after the struct it covers, so no version's layout is hard-coded here). pg_resetwal must run
afterwards: the WAL pages carry the identifier too.

usage: new_system_identifier.py <data dir>/global/pg_control
"""
import os
import struct
import sys


def crc32c(data: bytes) -> int:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def main() -> None:
    path = sys.argv[1]
    with open(path, "rb") as f:
        raw = bytearray(f.read())
    for end in range(64, 1024, 4):  # ControlFileData is a few hundred bytes
        if struct.unpack_from("<I", raw, end)[0] == crc32c(bytes(raw[:end])):
            break
    else:
        sys.exit(f"{path}: no CRC-32C found after the control data")
    struct.pack_into("<Q", raw, 0, struct.unpack("<Q", os.urandom(8))[0])  # system_identifier
    struct.pack_into("<I", raw, end, crc32c(bytes(raw[:end])))
    with open(path, "wb") as f:
        f.write(raw)


if __name__ == "__main__":
    main()
