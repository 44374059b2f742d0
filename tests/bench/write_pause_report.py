#!/usr/bin/python3
"""The write pause the writers saw through each flip and revert, next to the controller's figures.

Read by tests/bench/bench_write_pause.sh (stdlib only):

  write_pause_report.py <runs> <logs dir> <out.md> <rounds.md> <header line> <proxy logs dir>

<runs>: one line per flip or revert: method op round t0_ns t1_ns json_file (t0: just before the
controller started, t1: just after it returned). <logs dir>: pgbench's per-transaction logs
(-l), named <method>.r<round>.<p1|p2|c>.tx.<pid>: p1 and p2 run tpcb-like (script 0) and
ledger.sql (script 1) through proxy 1 and 2; c is the connect-per-transaction client (-C,
ledger.sql only, script 0).

A log line is: client_id transaction_no latency_us script_no epoch_s epoch_us [schedule_lag_us].
The completion is epoch_s.epoch_us. With -R, pgbench counts a transaction's latency from its
scheduled start, so it includes the schedule lag (time the client spent behind its schedule,
e.g. still waiting for the previous transaction): the transaction's own latency is latency -
schedule_lag, and it started at completion - its own latency. A transaction belongs to a window
when it overlaps [t0, t1].

<proxy logs dir> holds the proxies' logs, <method>.p<n>.log: their event=cutover_pausing and
event=cutover_resumed lines inside a window give the gates' span (first gate closing to the
last held client answered), so that a slow insert elsewhere in the controller's run (the
preconditions, say) is told apart from one held at a gate.
"""
import datetime
import glob
import json
import math
import os
import re
import statistics
import sys


def p_rank(values, p):
    """Nearest rank percentile (p in 0..100); with 5 samples, p90 is the max."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


WARM_UP_S = 1.0


def read_logs(logs_dir):
    """{(method, round): [(kind, start_s, end_s, latency_ms, warm_up)]}, and the count of failed
    or skipped transactions. warm_up: started in the first WARM_UP_S seconds of its pgbench run
    (the proxies' pools still connecting to the server), left out of the baseline."""
    tx, bad = {}, 0
    pat = re.compile(r"^(?P<m>[a-z]+)\.r(?P<r>\d+)\.(?P<k>p1|p2|c)\.tx\.\d+(\.\d+)?$")
    for path in sorted(glob.glob(os.path.join(logs_dir, "*.tx.*"))):
        mo = pat.match(os.path.basename(path))
        if not mo:
            continue
        rows = []
        for line in open(path):
            c = line.split()
            if len(c) < 6:
                continue
            if not c[2].isdigit():  # "failed" or "skipped"
                bad += 1
                continue
            lat_us = int(c[2]) - (int(c[6]) if len(c) >= 7 and c[6].isdigit() else 0)
            end = int(c[4]) + int(c[5]) / 1e6
            if mo["k"] == "c":
                kind = "connect"
            else:
                kind = "ledger" if c[3] == "1" else "tpcb"
            rows.append((kind, end - lat_us / 1e6, end, lat_us / 1000.0))
        first = min((t[1] for t in rows), default=0)
        tx.setdefault((mo["m"], int(mo["r"])), []).extend(
            t + (t[1] < first + WARM_UP_S,) for t in rows)
    return tx, bad


def gate_events(proxy_dir):
    """{method: [(ts, event)]} of cutover_pausing / cutover_resumed in the proxies' logs."""
    ev = {}
    pat = re.compile(r"^ts=(\S+)Z .*event=(cutover_pausing|cutover_resumed)\b")
    for path in glob.glob(os.path.join(proxy_dir, "*.p[0-9].log")):
        m = os.path.basename(path).split(".")[0]
        for line in open(path):
            mo = pat.match(line)
            if mo:
                ts = datetime.datetime.strptime(mo[1], "%Y-%m-%dT%H:%M:%S.%f").replace(
                    tzinfo=datetime.timezone.utc).timestamp()
                ev.setdefault(m, []).append((ts, mo[2]))
    return ev


def main():
    runs_f, logs_dir, md_f, rounds_f, header, proxy_dir = sys.argv[1:7]
    runs = []
    for line in open(runs_f):
        m, op, r, t0, t1, jf = line.split()
        rep = json.load(open(jf))
        runs.append({
            "method": m, "op": op, "round": int(r),
            "t0": int(t0) / 1e9, "t1": int(t1) / 1e9, "report": rep,
        })
    # "back": the scripted PgBouncer's unmeasured switch back; only left out of the baseline.
    windows = [(x["method"], x["t0"], x["t1"]) for x in runs]
    runs = [x for x in runs if x["op"] != "back"]
    tx, bad = read_logs(logs_dir)
    gates = gate_events(proxy_dir)
    methods = list(dict.fromkeys(x["method"] for x in runs))

    # Per flip / revert: the writers' figures in its window, the controller's figures.
    for x in runs:
        rows = tx.get((x["method"], x["round"]), [])
        inside = [t for t in rows if t[1] <= x["t1"] and t[2] >= x["t0"]]
        if "gate_window_s" in x["report"]:  # the scripted PgBouncer cutover: PAUSE to RESUME
            g0, g1 = x["report"]["gate_window_s"]
        else:
            ev = [e for e in gates.get(x["method"], []) if x["t0"] <= e[0] <= x["t1"] + 0.01]
            closed = [ts for ts, e in ev if e == "cutover_pausing"]
            opened = [ts for ts, e in ev if e == "cutover_resumed"]
            if not closed or not opened:
                sys.exit("no gate closing and reopening in the proxies' logs inside the %s of "
                         "round %d (%s)" % (x["op"], x["round"], x["method"]))
            g0, g1 = min(closed), max(opened)
        # Not across the gates: ended before the first gate closed or started after the last
        # held client was answered (10 ms of slack for the log's millisecond stamps).
        elsewhere = [t[3] for t in inside if t[0] == "ledger" and (t[2] < g0 or t[1] > g1 + 0.01)]
        across = [t[3] for t in inside if t[0] == "ledger" and not (t[2] < g0 or t[1] > g1 + 0.01)]

        def lat(kind):
            return [t[3] for t in inside if t[0] == kind]
        led, tpcb, conn = lat("ledger"), lat("tpcb"), lat("connect")
        if not led:
            sys.exit("no ledger insert overlapped the %s of round %d (%s): is pgbench writing?"
                     % (x["op"], x["round"], x["method"]))
        rep = x["report"]
        x["fig"] = {
            "ledger_max": max(led),
            "ledger_p99": p_rank(led, 99),
            "ledger_gates": max(across) if across else 0.0,
            "ledger_elsewhere": max(elsewhere) if elsewhere else 0.0,
            "tpcb_max": max(tpcb) if tpcb else 0.0,
            "connect_max": max(conn) if conn else 0.0,
            # Every writer of the ledger: the -C client inserts into it too. Its latency holds
            # its connection to the proxy as well (TLS, login): an upper bound on its wait.
            "writers_max": max(led + conn),
            "write_pause": float(rep["write_pause_ms"]),
            "span": float(rep["controller_span_ms"]),
        }
        x["n_ledger"] = len(led)
        x["held"] = rep.get("clients_held", 0)
        x["ratio"] = x["fig"]["write_pause"] / x["fig"]["ledger_max"]
        x["ratio_gates"] = x["fig"]["write_pause"] / max(x["fig"]["ledger_gates"], 0.001)
        x["ratio_writers"] = x["fig"]["write_pause"] / x["fig"]["writers_max"]
        x["steps"] = [(s["step"], float(s.get("ms", 0))) for s in rep["steps"]]

    figs = (
        ("ledger_max", "writers: ledger insert max (p100) ms"),
        ("ledger_p99", "writers: ledger insert p99 ms"),
        ("ledger_gates", "writers: ledger insert max, across the gates ms"),
        ("ledger_elsewhere", "writers: ledger insert max, not across the gates ms"),
        ("tpcb_max", "writers: tpcb-like max ms"),
        ("connect_max", "writers: -C client max ms"),
        ("writers_max", "writers: every ledger insert max, the -C client's too (p100) ms"),
        ("write_pause", "controller: write_pause_ms"),
        ("span", "controller: controller_span_ms"),
    )
    ops = ("flip", "revert", "both")

    def sel(m, op):
        return [x for x in runs if x["method"] == m and (op == "both" or x["op"] == op)]

    def ops_of(m):  # the scripted PgBouncer cutover has flips only
        return [op for op in ops if sel(m, op)]

    lines = [header, ""]
    for m in methods:
        lines += [
            "| %s | %s |" % (m, " | ".join(
                "%s median | p90 | max" % op for op in ops_of(m))),
            "|---|" + "---|" * (3 * len(ops_of(m))),
        ]
        for key, name in figs:
            if m == "pgbouncer" and key == "span":
                continue
            if m == "pgbouncer" and key == "write_pause":
                name = "script: PAUSE sent to last RESUME answered ms"
            cells = []
            for op in ops_of(m):
                v = [x["fig"][key] for x in sel(m, op)]
                cells += ["%.0f" % statistics.median(v), "%.0f" % p_rank(v, 90), "%.0f" % max(v)]
            lines.append("| %s | %s |" % (name, " | ".join(cells)))
        lines.append("")

    lines += [
        "| method | op | write_pause_ms / writers' ledger max: median | min | below 0.9 "
        "| write_pause_ms / ledger max across the gates: median | min | below 0.9 "
        "| write_pause_ms / every ledger insert's max (-C too): median | min | max | rounds "
        "| ledger inserts in the windows | clients held (median) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        for op in ops_of(m):
            s = sel(m, op)
            r = [x["ratio"] for x in s]
            g = [x["ratio_gates"] for x in s]
            w = [x["ratio_writers"] for x in s]
            lines.append("| %s | %s | %.2f | %.2f | %d | %.2f | %.2f | %d | %.2f | %.2f | %.2f "
                         "| %d | %d | %.0f |" % (
                m, op, statistics.median(r), min(r), sum(1 for v in r if v < 0.9),
                statistics.median(g), min(g), sum(1 for v in g if v < 0.9),
                statistics.median(w), min(w), max(w), len(s),
                sum(x["n_ledger"] for x in s), statistics.median(x["held"] for x in s)))
    lines.append("")

    # The proxies' flip against the scripted PgBouncer cutover, same run, same load.
    if "pgbouncer" in methods:
        pb = statistics.median(x["fig"]["ledger_max"] for x in sel("pgbouncer", "flip"))
        for m in methods:
            if m == "pgbouncer":
                continue
            own = statistics.median(x["fig"]["ledger_max"] for x in sel(m, "flip"))
            lines.append("Writers' ledger insert max (p100), median of the flips: %s %.0f ms, "
                         "scripted PgBouncer cutover %.0f ms: %.1fx better." % (
                             m, own, pb, pb / max(own, 0.001)))
            pb_all = statistics.median(x["fig"]["writers_max"] for x in sel("pgbouncer", "flip"))
            own_all = statistics.median(x["fig"]["writers_max"] for x in sel(m, "flip"))
            lines.append("Every ledger insert's max, the -C client's too (p100), median of the "
                         "flips: %s %.0f ms, scripted PgBouncer cutover %.0f ms: %.1fx better." % (
                             m, own_all, pb_all, pb_all / max(own_all, 0.001)))
        lines.append("")

    # Baseline: what the box does without a flip.
    base = []
    for m in methods:
        wins = [(a, b) for mm, a, b in windows if mm == m]
        def outside(kind):
            return [t[3] for (mm, _), rows in tx.items() if mm == m for t in rows
                    if t[0] == kind and not t[4]
                    and not any(t[1] <= b and t[2] >= a for a, b in wins)]
        out, outc = outside("ledger"), outside("connect")
        if out:
            base.append("%s: ledger inserts outside every flip/revert window max %.0f ms, "
                        "p99 %.1f ms, median %.1f ms (n = %d); -C client max %.0f ms"
                        % (m, max(out), p_rank(out, 99), statistics.median(out), len(out),
                           max(outc) if outc else 0.0))
    lines += ["Baseline (no flip running; the first %.0f s of each pgbench run left out, while the "
              "pools connect): " % WARM_UP_S + "; ".join(base) + ".", ""]

    # Step medians per method and op, in the order the controller ran them.
    for m in methods:
        names = []
        for x in sel(m, "both"):
            for st, _ in x["steps"]:
                if st not in names:
                    names.append(st)
        lines += ["| %s | %s |" % (m, " | ".join(names)), "|---|" + "---|" * len(names)]
        for op in ("flip", "revert"):
            cells = []
            for st in names:
                v = [ms for x in sel(m, op) for s, ms in x["steps"] if s == st]
                cells.append("%.0f" % statistics.median(v) if v else "-")
            lines.append("| %s | %s |" % (op, " | ".join(cells)))
        lines.append("")
    lines += [
        "Step medians in ms (the controller's JSON `steps[].ms`). The controller span runs from "
        "the start of `pause` to the last gate-opening answer in `flip`; the writers' figures "
        "come from pgbench's per-transaction logs (-l), transactions overlapping the window "
        "from just before the controller started to just after it returned; \"across the "
        "gates\": those of them that overlapped the span from the first gate closing to the "
        "last held client answered (the proxies' logs), \"not across\": the others.",
    ]
    if bad:
        lines += ["", "pgbench logged %d failed or skipped transaction(s)." % bad]
    text = "\n".join(lines) + "\n"
    open(md_f, "w").write(text)
    print(text, end="")

    # Per round, for whoever wants to see the spread.
    rl = ["| method | round | op | ledger max | ledger p99 | across the gates | not across "
          "| tpcb max | -C max | write_pause_ms | controller_span_ms | ratio "
          "| ratio to every ledger insert (-C too) | held | ledger n |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in runs:
        f = x["fig"]
        fmt = "| %s | %d | %s" + " | %.0f" * 8 + " | %.2f | %.2f | %s | %d |"
        rl.append(fmt % (
            x["method"], x["round"], x["op"], f["ledger_max"], f["ledger_p99"],
            f["ledger_gates"], f["ledger_elsewhere"], f["tpcb_max"],
            f["connect_max"], f["write_pause"], f["span"], x["ratio"], x["ratio_writers"],
            x["held"], x["n_ledger"]))
    open(rounds_f, "w").write(header + "\n\n" + "\n".join(rl) + "\n")


if __name__ == "__main__":
    main()
