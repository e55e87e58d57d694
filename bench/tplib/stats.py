"""What a configuration's pairs say: medians, and the median ratio with a bootstrap 95% interval.

This machine's speed drifts 3x within an hour, so a ratio from a few pairs is not evidence. Each pair is A and B
run one after the other (a few seconds apart); the ratio A/B of a pair is what the drift affects least, and the
interval says how far its median could be from the truth: a target is met only when the interval's lower end is
at or above it. The machine-state probe of every run is kept as a label (how many pairs had all four probes
within 25%), never as a filter.
"""
import random
import statistics

PROBE_AGREE = 1.25  # a pair is "in one state" when its four probes are within 25% (information only)
RESAMPLES = 10000


def median_ci(values, level=0.95, seed=20261207):
    """The median and its bootstrap percentile interval (resampling the values with replacement), or Nones."""
    if not values:
        return None, (None, None)
    if len(values) == 1:
        return values[0], (None, None)
    rng = random.Random(seed)  # the same samples give the same interval
    n = len(values)
    meds = sorted(statistics.median(rng.choices(values, k=n)) for _ in range(RESAMPLES))
    lo = meds[int((1 - level) / 2 * RESAMPLES)]
    hi = meds[min(RESAMPLES - 1, int((1 + level) / 2 * RESAMPLES))]
    return statistics.median(values), (lo, hi)


def probes_agree(*probes):
    """True when every probe (a number, or a run's [before, after]) is within PROBE_AGREE of the others."""
    flat = [x for p in probes for x in (p if isinstance(p, (list, tuple)) else [p])]
    return bool(flat) and min(flat) > 0 and max(flat) / min(flat) <= PROBE_AGREE


def row_of(c, pairs):
    """A table row from a configuration's pairs ({"vireo": run, "dpdk": run} with pps, cycles, path, probe)."""
    def side(s, key):
        return [p[s][key] for p in pairs if p[s].get(key)]

    ratio, ci = median_ci([p["vireo"]["pps"] / p["dpdk"]["pps"] for p in pairs])
    both = [p for p in pairs if p["vireo"].get("cycles") and p["dpdk"].get("cycles")]
    cratio, cci = median_ci([p["vireo"]["cycles"] / p["dpdk"]["cycles"] for p in both])
    paths = {s: "; ".join(sorted({p[s].get("path", "") for p in pairs} - {""})) for s in ("vireo", "dpdk")}
    med = {s: statistics.median(side(s, "pps")) / 1e6 for s in ("vireo", "dpdk")}
    cyc = {s: (statistics.median(side(s, "cycles")) if side(s, "cycles") else None) for s in ("vireo", "dpdk")}
    agree = sum(1 for p in pairs if probes_agree(p["vireo"].get("probe", []), p["dpdk"].get("probe", [])))
    return {"config": c, "paths": paths, "vireo": med["vireo"], "dpdk": med["dpdk"], "ratio": ratio, "ci": ci,
            "vireo_cycles": cyc["vireo"], "dpdk_cycles": cyc["dpdk"], "cycles_ratio": cratio, "cycles_ci": cci,
            "pairs": len(pairs), "probes_agree": agree,
            "vireo_all": [x / 1e6 for x in side("vireo", "pps")], "dpdk_all": [x / 1e6 for x in side("dpdk", "pps")]}
