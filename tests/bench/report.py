#!/usr/bin/python3
"""Turns the raw results of tests/bench/bench.sh (a run directory) into markdown tables and
plots. Writes <out>/results.md and <img>/bench-*.svg; prints the markdown.

    report.py RUN_DIR OUT_DIR IMG_DIR

RUN_DIR holds pgbench.tsv (workload clients target tps latency_ms status pooler_cpu_us_per_txn),
idle-*.json,
tls-*.json, flips.json + flip_log.* (pgbench per-transaction log), validate.json, meta.json.
"""
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TARGETS = ["direct", "pgbouncer", "proxy"]
WORKLOADS = ["select-only", "tpcb-like", "extended", "prepared", "connect"]
WORKLOAD_HELP = {
    "select-only": "`-b select-only` (simple protocol)",
    "tpcb-like": "`-b tpcb-like`",
    "extended": "`-b select-only -M extended`",
    "prepared": "`-b select-only -M prepared`",
    "connect": "`-b select-only -C` (a new connection per transaction)",
}


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def pct(values, p):
    s = sorted(values)
    if not s:
        return 0.0
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def verdict(ok):
    return "**met**" if ok else "**not met**"


def main():
    run, out_dir, img_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(img_dir, exist_ok=True)
    meta = load_json(os.path.join(run, "meta.json")) or {}
    rows = {}
    with open(os.path.join(run, "pgbench.tsv")) as f:
        for line in f:
            w, c, t, tps, lat, status, *rest = line.rstrip("\n").split("\t")
            cpu = float(rest[0]) if rest and rest[0] not in ("", "-") else None
            rows[(w, int(c), t)] = (float(tps), float(lat), status, cpu)
    clients = sorted({k[1] for k in rows})
    md = []
    md.append(f"Run: {meta.get('date', '?')}, {meta.get('cores', '?')} cores, "
              f"{meta.get('seconds', '?')} s per pgbench run, scale {meta.get('scale', '?')}, "
              f"pool {meta.get('pool', '?')} (proxy and PgBouncer), proxy threads "
              f"{meta.get('proxy_threads', '?')} (0 = one per core), {meta.get('pg', '')}, "
              f"{meta.get('pgbouncer', '')}. Loopback; pgbench to the poolers and direct without "
              "TLS; " + ("poolers to PostgreSQL over TLS (sslmode=require)"
                         if meta.get("server_tls") else "poolers to PostgreSQL without TLS") +
              "; SCRAM-SHA-256 logins everywhere.\n")

    # ---- throughput table ----
    md.append("| workload | clients | direct tps | PgBouncer tps | proxy tps | proxy / PgBouncer "
              "| proxy / direct | PgBouncer CPU µs/txn | proxy CPU µs/txn |")
    md.append("|---|---|---|---|---|---|---|---|---|")

    def cpu(w, c, t):
        r = rows.get((w, c, t))
        return f"{r[3]:.1f}" if r and r[2] == "ok" and r[3] is not None else "-"

    def cell(w, c, t):
        r = rows.get((w, c, t))
        if r is None:
            return "-"
        if r[2] != "ok":
            return f"failed ({r[2]})"
        return f"{r[0]:.0f}"

    def ratio(w, c, a, b):
        ra, rb = rows.get((w, c, a)), rows.get((w, c, b))
        if not ra or not rb or ra[2] != "ok" or rb[2] != "ok" or rb[0] <= 0:
            return "n/a"
        return f"{ra[0] / rb[0]:.2f}"

    for w in WORKLOADS:
        for c in clients:
            md.append(f"| {w} | {c} | {cell(w, c, 'direct')} | {cell(w, c, 'pgbouncer')} | "
                      f"{cell(w, c, 'proxy')} | {ratio(w, c, 'proxy', 'pgbouncer')} | "
                      f"{ratio(w, c, 'proxy', 'direct')} | {cpu(w, c, 'pgbouncer')} | "
                      f"{cpu(w, c, 'proxy')} |")
    md.append("")
    md.append("CPU µs/txn: the pooler process's user + system CPU time during the run divided by "
              "the transactions pgbench completed (the pooler's own cost per transaction; on a "
              "machine whose cores pgbench, PostgreSQL and the pooler share, tps also shows how "
              "the cores were shared).\n")
    md.append("Workloads: " + "; ".join(f"{k} = {v}" for k, v in WORKLOAD_HELP.items()) + ".\n")

    # ---- latency added per query at 1 client ----
    md.append("| workload, 1 client | direct latency ms | PgBouncer ms | proxy ms | "
              "added by PgBouncer ms | added by proxy ms |")
    md.append("|---|---|---|---|---|---|")
    for w in WORKLOADS:
        d, b, p = (rows.get((w, 1, t)) for t in TARGETS)
        if not d or d[2] != "ok":
            continue

        def lat(r):
            return f"{r[1]:.3f}" if r and r[2] == "ok" else "n/a"

        def added(r):
            return f"{r[1] - d[1]:+.3f}" if r and r[2] == "ok" else "n/a"

        md.append(f"| {w} | {lat(d)} | {lat(b)} | {lat(p)} | {added(b)} | {added(p)} |")
    md.append("")

    # ---- plot: throughput per workload ----
    fig, axes = plt.subplots(1, len(WORKLOADS), figsize=(4 * len(WORKLOADS), 3.6), sharey=False)
    colors = {"direct": "#888888", "pgbouncer": "#4c72b0", "proxy": "#dd8452"}
    for ax, w in zip(axes, WORKLOADS):
        width = 0.26
        for i, t in enumerate(TARGETS):
            xs, ys = [], []
            for j, c in enumerate(clients):
                r = rows.get((w, c, t))
                xs.append(j + (i - 1) * width)
                ys.append(r[0] if r and r[2] == "ok" else 0)
            ax.bar(xs, ys, width, label=t, color=colors[t])
        ax.set_xticks(range(len(clients)), [str(c) for c in clients])
        ax.set_xlabel("clients")
        ax.set_title(w)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("transactions per second")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(img_dir, "bench-throughput.svg"))
    plt.close(fig)

    # ---- idle clients ----
    md.append("| 10,000 idle clients | logged in | still connected | RSS before | RSS with clients "
              "| bytes per client |")
    md.append("|---|---|---|---|---|---|")
    idle = {}
    for mode, t in ((m, t) for m in ("plain", "plain-query", "tls", "tls-query")
                    for t in ("proxy", "pgbouncer")):
        j = load_json(os.path.join(run, f"idle-{mode}-{t}.json"))
        label = t + (" (TLS)" if mode.startswith("tls") else "")
        label += ", after a query" if mode.endswith("-query") else ""
        if not j:
            md.append(f"| {label} | failed | | | | |")
            continue
        idle[label] = j
        md.append(f"| {label} | {j['logged_in']} of {j['requested']} | {j['alive_at_measure']} | "
                  f"{j['rss_before_kib'] / 1024:.1f} MiB | {j['rss_with_clients_kib'] / 1024:.1f} MiB"
                  f" | {j['bytes_per_client']} |")
    md.append("")

    # ---- TLS ----
    md.append("| TLS handshakes (SSLRequest + full handshake, no resumption) | handshakes/s | "
              "errors | protocol, cipher |")
    md.append("|---|---|---|---|")
    tls = {}
    for t in ("proxy", "pgbouncer"):
        j = load_json(os.path.join(run, f"tls-{t}.json"))
        if not j:
            md.append(f"| {t} | failed | | |")
            continue
        tls[t] = j
        md.append(f"| {t} | {j['handshakes_per_second']} | {j['errors']} | "
                  f"{j['tls_version']}, {j['cipher']} |")
    md.append("")

    # ---- flips ----
    flips = (load_json(os.path.join(run, "flips.json")) or {}).get("rounds", [])
    pauses = [r["pause_ms"] for r in flips]
    longest = []
    logs = glob.glob(os.path.join(run, "flip_log.*"))
    txns = []
    for path in logs:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) >= 6:
                    end = int(p[4]) * 1000000 + int(p[5])
                    txns.append((end - int(p[2]), end, int(p[2])))
    for r in flips:
        m = max((lat for start, end, lat in txns if end >= r["t0_us"] and start <= r["t1_us"]),
                default=0)
        longest.append(m / 1000.0)
    bench_out = ""
    try:
        with open(os.path.join(run, "flip_pgbench.out")) as f:
            bench_out = f.read()
    except OSError:
        pass
    failed = "?"
    for line in bench_out.splitlines():
        if line.startswith("number of failed transactions:"):
            failed = line.split(":")[1].split()[0]
        if line.startswith("number of transactions actually processed:"):
            processed = line.split(":")[1].split()[0]
            failed += f" of {processed}"
    if pauses:
        md.append(f"| {len(pauses)} flips under pgbench tpcb-like, 16 clients | p50 ms | p99 ms | "
                  "max ms |")
        md.append("|---|---|---|---|")
        md.append(f"| pause -> catch-up -> flip -> resume (controller's clock) | "
                  f"{pct(pauses, 50):.0f} | {pct(pauses, 99):.0f} | {max(pauses):.0f} |")
        md.append(f"| of which catch-up to the fixed LSN | {pct([r['catch_up_ms'] for r in flips], 50):.0f}"
                  f" | {pct([r['catch_up_ms'] for r in flips], 99):.0f} | "
                  f"{max(r['catch_up_ms'] for r in flips):.0f} |")
        waits = [r.get("client_wait_worst_ms", 0) for r in flips]
        md.append(f"| write pause: held clients' worst wait, as the proxy measured it | "
                  f"{pct(waits, 50):.0f} | {pct(waits, 99):.0f} | {max(waits):.0f} |")
        if txns:
            md.append(f"| longest pgbench transaction across each flip (its wait + its run) | "
                      f"{pct(longest, 50):.0f} | {pct(longest, 99):.0f} | {max(longest):.0f} |")
        reverts = [r["revert_ms"] for r in flips]
        md.append(f"| revert (prewarm + pause + flip, no catch-up; not part of the target) | "
                  f"{pct(reverts, 50):.0f} | {pct(reverts, 99):.0f} | {max(reverts):.0f} |")
        md.append(f"\npgbench across all flips and reverts: failed transactions {failed}.\n")
        fig, ax = plt.subplots(figsize=(7, 3.2))
        xs = range(1, len(pauses) + 1)
        ax.plot(xs, pauses, "o-", label="pause -> resume (controller)")
        ax.plot(xs, waits, "^-", label="held clients' worst wait (proxy)")
        if txns:
            ax.plot(xs, longest, "s--", label="longest client transaction")
        ax.axhline(250, color="red", lw=1, ls=":", label="target p99 250 ms")
        ax.set_xlabel("flip")
        ax.set_ylabel("ms")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(img_dir, "bench-flip-pause.svg"))
        plt.close(fig)

    # ---- validate ----
    v = load_json(os.path.join(run, "validate.json"))
    if v:
        md.append(f"| validate | rows | MB per side | seconds | MB/s per side |")
        md.append("|---|---|---|---|---|")
        md.append(f"| `pgcutoverctl validate --jobs {v['jobs']}`, pgbench scale {meta.get('scale')} "
                  f"| {v['rows']} | {v['mb']:.1f} | {v['seconds']:.2f} | {v['mb'] / v['seconds']:.1f} |")
        md.append("")

    # ---- targets ----
    md.append("| target | measured | verdict |")
    md.append("|---|---|---|")
    for c in clients:
        p, b, d = (rows.get(("select-only", c, t)) for t in ("proxy", "pgbouncer", "direct"))
        if p and b and d and p[2] == b[2] == d[2] == "ok":
            rb, rd = p[0] / b[0], p[0] / d[0]
            md.append(f"| select-only >= 1.2x PgBouncer, {c} clients | {rb:.2f}x | {verdict(rb >= 1.2)} |")
            md.append(f"| select-only >= 0.9x direct, {c} clients | {rd:.2f}x | {verdict(rd >= 0.9)} |")
    if "proxy" in idle:
        mib = idle["proxy"]["rss_with_clients_kib"] / 1024
        md.append(f"| 10,000 idle clients < 64 MB RSS | {mib:.1f} MiB "
                  f"({idle['proxy']['logged_in']} logged in) | "
                  f"{verdict(mib < 64 and idle['proxy']['logged_in'] >= 10000)} |")
    if pauses:
        # The write pause is what the held clients waited (docs/cutover.md "Figures").
        p99 = pct([r.get("client_wait_worst_ms", 0) for r in flips], 99)
        md.append(f"| flip write pause p99 < 250 ms | {p99:.0f} ms (held clients' worst wait) | "
                  f"{verdict(p99 < 250)} |")
    md.append("")
    text = "\n".join(md)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
