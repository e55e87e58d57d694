"""bench/throughput's output: the markdown table, the rows of an earlier run's JSON, the plots."""
import sys

from .runs import Config
from .stats import row_of


def _ci(ratio, ci):
    if ratio is None:
        return "-"
    if ci[0] is None:
        return f"{ratio:.2f}x (one pair: no interval)"
    return f"{ratio:.2f}x [{ci[0]:.2f}, {ci[1]:.2f}]"


def _num(x, fmt="{:.1f}"):
    return fmt.format(x) if x is not None else "-"


def table(rows, a_name, b_name):
    out = [f"| peer | features | ring | mode | frame | queues | burst | {a_name} Mpps | {b_name} Mpps | "
           f"median ratio A/B [95% CI] | {a_name} cycles/pkt | {b_name} cycles/pkt | cycles A/B [95% CI] | "
           f"pairs (probes agree) | {a_name} path | {b_name} path |",
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|"]
    for r in rows:
        c = r["config"]
        feats = c.kind + ("" if c.kind == "equal" else f" (in_order vireo {c.in_order['vireo']}, "
                                                          f"DPDK {c.in_order['dpdk']})")
        paths = r.get("paths", {})
        out.append(f"| {c.peer} | {feats} | {c.ring} | {c.mode} | {c.size} | {c.queues} | {c.burst} | "
                   f"{r['vireo']:.2f} | {r['dpdk']:.2f} | {_ci(r['ratio'], r['ci'])} | "
                   f"{_num(r['vireo_cycles'])} | {_num(r['dpdk_cycles'])} | {_ci(r['cycles_ratio'], r['cycles_ci'])} | "
                   f"{r['pairs']} ({r['probes_agree']}) | {paths.get('vireo', '')} | {paths.get('dpdk', '')} |")
    return "\n".join(out)


def rows_from_samples(samples):
    """Table rows from a JSON file's samples (bench/throughput --render FILE.json): (rows, sweep rows). Files
    written before cycles were recorded show '-' for them; a pair with a side at 0 (the bug those files could
    hold) is left out, and said so."""
    first = next((i for i, s in enumerate(samples) if s.get("sweep") or s["burst"] != 32), len(samples))
    out = []
    for part in (samples[:first], samples[first:]):
        groups, ios = {}, {}
        for s in part:
            if s.get("tuning"):
                continue
            key = (s.get("peer", "vhost"), s.get("kind", "equal"), s["ring"], s["mode"], s["size"], s["burst"],
                   s["queues"])
            run = {"pps": s["pps"], "cycles": s.get("cycles"), "path": s.get("path", ""),
                   "probe": s.get("probe_ns", [])}
            groups.setdefault(key, {}).setdefault(s["pair"], {})[s["side"]] = run
            ios.setdefault(key, {})[s["side"]] = s.get("in_order", 0)
        rows = []
        for key, pairs in groups.items():
            got = [p for p in pairs.values() if "vireo" in p and "dpdk" in p]
            good = [p for p in got if p["vireo"]["pps"] > 0 and p["dpdk"]["pps"] > 0]
            if len(good) < len(got):
                print(f"render: {key}: {len(got) - len(good)} pair(s) with a side at 0 left out", file=sys.stderr)
            if not good:
                continue
            c = Config(*key[2:], peer=key[0], kind=key[1])
            c.in_order.update(ios.get(key, {}))
            rows.append(row_of(c, good))
        out.append(rows)
    return out[0], out[1]


def plots(rows, sweep, prefix, a_name, b_name):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("throughput: python3-matplotlib missing: no plots (apt-get install python3-matplotlib)",
              file=sys.stderr)
        return []
    made = []
    if rows:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(max(10, len(rows) * 1.2), 4.8))
        xs = range(len(rows))
        w = 0.4
        for k, (side, label) in enumerate((("vireo", a_name), ("dpdk", b_name))):
            med = [r[side] for r in rows]
            lo = [r[side] - min(r[side + "_all"]) for r in rows]
            hi = [max(r[side + "_all"]) - r[side] for r in rows]
            ax.bar([x + (k - 0.5) * w for x in xs], med, w, yerr=[lo, hi], capsize=2, label=label)
        ax.set_ylabel("Mpps (median of the pairs; bars: min-max)")
        ratios = [r["ratio"] for r in rows]
        err = [[r["ratio"] - (r["ci"][0] if r["ci"][0] is not None else r["ratio"]) for r in rows],
               [(r["ci"][1] if r["ci"][1] is not None else r["ratio"]) - r["ratio"] for r in rows]]
        ax2.errorbar(list(xs), ratios, yerr=err, fmt="o", capsize=4)
        ax2.axhline(1.0, color="grey", lw=0.8)
        ax2.set_ylabel(f"{a_name} / {b_name}: median ratio, 95% interval")
        for a in (ax, ax2):
            a.set_xticks(list(xs))
            a.set_xticklabels([r["config"].name() for r in rows], rotation=60, ha="right", fontsize=7)
        ax.legend()
        fig.suptitle("Against the same DPDK 22.11 vhost back end, one core each side")
        fig.tight_layout()
        fig.savefig(prefix + "-configs.png", dpi=110)
        made.append(prefix + "-configs.png")
    if sweep:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for side, label in (("vireo", a_name), ("dpdk", b_name)):
            ax.plot([r["config"].burst for r in sweep], [r[side] for r in sweep], marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("burst size (packets)")
        ax.set_ylabel("Mpps")
        c = sweep[0]["config"]
        ax.set_title(f"Mpps versus burst size ({c.mode}, {c.ring}, {c.size} B)")
        ax.legend()
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(prefix + "-burst.png", dpi=110)
        made.append(prefix + "-burst.png")
    return made
