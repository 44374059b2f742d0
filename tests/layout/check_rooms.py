#!/usr/bin/python3
"""Checks that every #include in the C++ tree follows the house's plan (tests/layout/rooms.txt).

    check_rooms.py [TREE]        check TREE (default: the source tree this file is in)
    check_rooms.py --self-test   plant wrong includes in a copy of the tree and expect each one
                                 to be reported (the check must be able to fail)

Exit 0 when the tree follows the plan; 1 with one line per violation (file:line, the include,
the rule it breaks, how to fix it); 2 when the plan itself is wrong (unknown room, a cycle).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TREE = os.path.dirname(os.path.dirname(HERE))
PLAN = os.path.join(HERE, "rooms.txt")
SOURCE_TOPS = ("protocol", "common", "proxy", "control")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


class PlanError(Exception):
    pass


def read_plan(path):
    """rooms.txt -> (uses: room -> set of rooms, forbids: room -> list of header prefixes)."""
    uses, forbids = {}, {}
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            m = re.match(r"^(\S+)\s+(uses|forbids):\s*(.*)$", line)
            if not m:
                raise PlanError(f"{path}:{number}: expected '<room> uses: ...' or "
                                f"'<room> forbids: ...', got {raw.strip()!r}")
            room, kind, rest = m.group(1), m.group(2), m.group(3).split()
            if kind == "uses":
                uses.setdefault(room, set()).update(r for r in rest if r != "-")
            else:
                forbids.setdefault(room, []).extend(rest)
    for room, used in uses.items():
        for other in used:
            if other not in uses:
                raise PlanError(f"{path}: room {room} uses {other}, which is not a room of the plan")
    for room in forbids:
        if room not in uses:
            raise PlanError(f"{path}: 'forbids' for {room}, which has no 'uses' line")
    cycle = find_cycle(uses)
    if cycle:
        raise PlanError(f"{path}: the plan has a cycle: {' -> '.join(cycle)} "
                        "(dependencies must point one way)")
    return uses, forbids


def find_cycle(uses):
    state = {}  # room -> 1 while on the stack, 2 when done

    def visit(room, stack):
        state[room] = 1
        for other in sorted(uses[room]):
            if state.get(other) == 1:
                return stack[stack.index(other):] + [other] if other in stack else [room, other]
            if other not in state:
                found = visit(other, stack + [other])
                if found:
                    return found
        state[room] = 2
        return None

    for room in sorted(uses):
        if room not in state:
            found = visit(room, [room])
            if found:
                return found
    return None


def room_of(path, rooms):
    """The longest room whose folder holds `path` (a path relative to the tree), else None."""
    best = None
    for room in rooms:
        if os.path.dirname(path) == room or path.startswith(room + "/"):
            if best is None or len(room) > len(best):
                best = room
    return best


def source_files(tree):
    for top in SOURCE_TOPS:
        for folder, _, names in os.walk(os.path.join(tree, top)):
            for name in sorted(names):
                if name.endswith((".h", ".cpp")):
                    yield os.path.relpath(os.path.join(folder, name), tree)


def check(tree, uses, forbids):
    problems = []
    for rel in source_files(tree):
        room = room_of(rel, uses)
        if room is None:
            problems.append(f"{rel}: in no room of tests/layout/rooms.txt: move it into a room's "
                            "folder, or add its folder to the plan")
            continue
        with open(os.path.join(tree, rel), encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                quote, header = m.group(1), m.group(2)
                where = f"{rel}:{number}: #include {quote}{header}{'>' if quote == '<' else quote}"
                if quote == "<":
                    for prefix in forbids.get(room, []):
                        if header.startswith(prefix):
                            problems.append(f"{where}: room {room} forbids <{prefix}...> "
                                            "(tests/layout/rooms.txt)")
                    continue
                if not os.path.exists(os.path.join(tree, header)):
                    problems.append(f"{where}: no such file in the tree (includes are written "
                                    "from the top: \"proxy/net/stream.h\")")
                    continue
                target = room_of(header, uses)
                if target is None or target == room or target in uses[room]:
                    continue
                allowed = " ".join(sorted(uses[room])) or "nothing of ours"
                problems.append(f"{where}: room {room} may not include room {target} "
                                f"(it uses: {allowed}); move the shared piece down into a room "
                                f"both may use, or hand it in through an interface")
    return problems


# Each planted include must be reported; each names a rule of the plan that it breaks.
PLANTED = [
    ("protocol/framing.cpp", '#include "proxy/net/stream.h"', "room protocol may not include"),
    ("protocol/scram.cpp", "#include <boost/asio/io_context.hpp>", "room protocol forbids"),
    ("common/config.cpp", '#include "proxy/settings/settings.h"', "room common may not include"),
    ("proxy/cutover/cutover_engine.cpp", '#include "proxy/telemetry/metrics.h"',
     "room proxy/cutover may not include room proxy/telemetry"),
    ("proxy/admin/admin_routes.cpp", '#include "proxy/runtime/data_plane.h"',
     "room proxy/admin may not include room proxy/runtime"),
    ("proxy/session/client_session.cpp", '#include "proxy/runtime/shard.h"',
     "room proxy/session may not include room proxy/runtime"),
    ("proxy/pool/server_pool.cpp", '#include "proxy/session/client_session.h"',
     "room proxy/pool may not include room proxy/session"),
    ("proxy/net/stream.cpp", '#include "proxy/no_such_header.h"', "no such file"),
]


def self_test():
    uses, forbids = read_plan(PLAN)
    failures = 0
    with tempfile.TemporaryDirectory() as scratch:
        tree = os.path.join(scratch, "tree")
        for top in SOURCE_TOPS:
            shutil.copytree(os.path.join(DEFAULT_TREE, top), os.path.join(tree, top))
        clean = check(tree, uses, forbids)
        if clean:
            print("self-test: the unchanged tree already breaks the plan:", *clean, sep="\n  ")
            return 1
        for rel, planted, expected in PLANTED:
            path = os.path.join(tree, rel)
            with open(path, encoding="utf-8") as f:
                original = f.read()
            with open(path, "w", encoding="utf-8") as f:
                f.write(planted + "\n" + original)
            found = [p for p in check(tree, uses, forbids) if p.startswith(rel + ":1:")]
            with open(path, "w", encoding="utf-8") as f:
                f.write(original)
            if len(found) == 1 and expected in found[0]:
                print(f"self-test: caught {rel}: {planted}")
            else:
                failures += 1
                print(f"self-test: NOT caught as expected ({expected!r}): {rel}: {planted}; "
                      f"reported: {found}")
        # A plan with a cycle is refused.
        cyclic = os.path.join(scratch, "cyclic.txt")
        with open(cyclic, "w", encoding="utf-8") as f:
            f.write("a uses: b\nb uses: c\nc uses: a\n")
        try:
            read_plan(cyclic)
            failures += 1
            print("self-test: a plan with the cycle a -> b -> c -> a was accepted")
        except PlanError as e:
            print(f"self-test: refused a cyclic plan: {e}")
    print(f"{len(PLANTED) + 1 - failures} passed, {failures} failed")
    return 1 if failures else 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
        print(__doc__.strip())
        return 0 if argv[1:] in (["-h"], ["--help"]) else 2
    tree = argv[1] if len(argv) == 2 else DEFAULT_TREE
    try:
        uses, forbids = read_plan(PLAN)
    except PlanError as e:
        print(e)
        return 2
    problems = check(tree, uses, forbids)
    for p in problems:
        print(p)
    files = sum(1 for _ in source_files(tree))
    print(f"rooms: {len(uses)} rooms, {files} files, {len(problems)} includes against the plan")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
