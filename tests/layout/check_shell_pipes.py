#!/usr/bin/python3
"""The shell scripts of the tree do not pipe a variable into a reader that may stop early.

    check_shell_pipes.py               check every .sh and .bash under tests/, deploy/ and .ci/
    check_shell_pipes.py --self-test   feed it the lines it must catch and the ones it must not

Under `set -o pipefail`, `echo "$out" | grep -q x` (or `| head -1`) fails now and then: bash's
echo writes a multi-line value one line per write(), and when the reader has already exited
(grep -q at its first match, head after its lines), the next write kills echo with SIGPIPE, the
pipeline returns 141 and `set -e` ends the script without a message (docs/testing.md).
Exit 0 when no script does it; 1 with file:line and the fix for each one that does.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TREE = os.path.dirname(os.path.dirname(HERE))
ROOTS = ("tests", "deploy", ".ci")
# A pipeline that starts by echoing (or printf-ing) a variable into grep -q or head.
RISKY = re.compile(
    r"""(?:^|[;&|(`{]|\$\()\s*(?:echo|printf\s+(?:'[^']*'|"[^"]*"))\s+"\$\{?\w+\}?"\s*\|\s*"""
    r"""(?:grep\s+(?:-\w+\s+)*-\w*q|head\b)""")
FIX = "use a here-string (grep -q pattern <<<\"$x\") or ${x%%$'\\n'*} for the first line"


def scan(text):
    """Line numbers (1-based) of the risky pipelines in one script."""
    return [i for i, line in enumerate(text.splitlines(), 1)
            if not line.lstrip().startswith("#") and RISKY.search(line)]


def check():
    problems = []
    for root in ROOTS:
        for base, dirs, files in os.walk(os.path.join(TREE, root)):
            dirs[:] = [d for d in dirs if d not in ("node_modules", ".git")]
            for name in sorted(files):
                if not name.endswith((".sh", ".bash")):
                    continue
                path = os.path.join(base, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for n in scan(f.read()):
                        problems.append(f"{os.path.relpath(path, TREE)}:{n}: {FIX}")
    return problems


CAUGHT = (
    'echo "$out" | grep -q "read-only transaction" || fail "x"',
    'first_pid=$(echo "$out" | head -1)',
    "printf '%s\\n' \"$msg\" | grep -qF x",
    'echo "${reply}" | grep -E -q ok',
    'x=1; echo "$out" | head -n 2',
)
PASSED = (
    'grep -q "read-only transaction" <<<"$out" || fail "x"',
    "first_pid=${out%%$'\\n'*}",
    'echo "server: $(pgbouncer --version | head -1)"',
    'echo "$out" | grep -c x',
    'grep -o x "$f" | head -1',
    '# echo "$out" | grep -q x',
)


def self_test():
    failures = 0
    for line in CAUGHT:
        if scan(line) != [1]:
            print(f"self-test: not caught: {line}")
            failures += 1
    for line in PASSED:
        if scan(line):
            print(f"self-test: caught but fine: {line}")
            failures += 1
    print(f"self-test: {len(CAUGHT)} caught, {len(PASSED)} let through, {failures} wrong")
    return 1 if failures else 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    problems = check()
    for p in problems:
        print(p)
    print(f"shell pipes: {len(problems)} risky pipeline(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
