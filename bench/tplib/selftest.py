#!/usr/bin/python3
"""bench/throughput's bookkeeping, without running anything: `python3 -m tplib.selftest` from bench/ (meson test
throughput-selftest). A side that read 0 or printed no cycles must stop the benchmark; the interval must hold the
median and be reproducible; testpmd's displays must be read per display, summed over ports."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tplib.report import rows_from_samples  # noqa: E402
from tplib.runs import measured  # noqa: E402
from tplib.stats import median_ci, probes_agree  # noqa: E402
from tplib.testpmd import ERROR_LINES, BenchError, rates  # noqa: E402

DISPLAY = """
  ######################## NIC statistics for port 0  ########################
  RX-packets: 100        RX-missed: 0          RX-bytes:  6400
  Throughput (since last show)
  Rx-pps:         1000          Rx-bps:       512000
  Tx-pps:            0          Tx-bps:            0
  ######################## NIC statistics for port 1  ########################
  Rx-pps:         2000          Rx-bps:       512000
  Tx-pps:            5          Tx-bps:            0
"""


class Bookkeeping(unittest.TestCase):
    def test_a_display_is_summed_over_ports(self):
        self.assertEqual(rates(DISPLAY * 3, "Rx-pps", 2), [3000.0] * 3)
        self.assertEqual(rates(DISPLAY, "Tx-pps", 1), [0.0, 5.0])

    def test_a_side_that_read_nothing_stops_the_benchmark(self):
        with self.assertRaisesRegex(BenchError, "read 0 pps.*log kept: /tmp/x.log"):
            measured("DPDK virtio-user", [0.0, 0.0], 300.0, "", "/tmp/x.log")
        with self.assertRaisesRegex(BenchError, "read 0 pps"):
            measured("vireo-fwd", [], 300.0, "", "/tmp/x.log")
        with self.assertRaisesRegex(BenchError, "no cycles"):
            measured("DPDK virtio-user", [5e6, 6e6], None, "", "/tmp/x.log")
        got = measured("vireo-fwd", [5e6, 7e6, 6e6], 120.5, "split", "/tmp/x.log", 1.5)
        self.assertEqual((got["pps"], got["cycles"], got["startup_s"]), (6e6, 120.5, 1.5))

    def test_the_interval_holds_the_median_and_is_reproducible(self):
        values = [0.9, 1.1, 1.3, 1.2, 1.25, 1.15, 1.4, 0.95, 1.05, 1.22]
        med, (lo, hi) = median_ci(values)
        self.assertTrue(lo <= med <= hi)
        self.assertTrue(min(values) <= lo and hi <= max(values))
        self.assertEqual(median_ci(values), (med, (lo, hi)))
        self.assertEqual(median_ci([1.2] * 20), (1.2, (1.2, 1.2)))
        self.assertEqual(median_ci([1.2]), (1.2, (None, None)))  # one pair: no interval, and the table says so
        wide = median_ci([0.5, 2.0, 0.6, 1.9, 0.55, 2.1])[1]
        self.assertGreater(wide[1] - wide[0], hi - lo)

    def test_probes_are_a_label(self):
        self.assertTrue(probes_agree([60, 70], [65, 72]))
        self.assertFalse(probes_agree([60, 70], [65, 190]))

    def test_failure_lines_are_found(self):
        log = "EAL: Detected CPU lcores: 2\nFail to start port 0: Invalid argument\nvirtio: using standard Tx\n"
        self.assertEqual(len(ERROR_LINES.findall(log)), 1)
        self.assertEqual(ERROR_LINES.findall("Port 0: 52:54:00:12:34:56\nChecking link statuses...\n"), [])

    def test_rendering_leaves_out_pairs_with_a_side_at_zero(self):
        def s(side, pair, pps):
            return {"ring": "split", "mode": "rx", "size": 64, "burst": 32, "queues": 1, "pair": pair,
                    "side": side, "pps": pps, "cycles": 100.0}
        rows, sweep = rows_from_samples([s("vireo", 0, 2e6), s("dpdk", 0, 1e6), s("vireo", 1, 2e6), s("dpdk", 1, 0.0)])
        self.assertEqual((len(rows), rows[0]["pairs"], rows[0]["ratio"], sweep), (1, 1, 2.0, []))


if __name__ == "__main__":
    unittest.main()
