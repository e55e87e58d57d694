#!/usr/bin/env python3
"""The default build runs on any x86-64-v2 CPU: no instruction beyond it (no VEX or EVEX encoding: AVX, AVX2,
AVX-512, BMI2's VEX forms) may appear outside the burst functions that are chosen at run time from CPUID
(data_paths.hpp, data_paths_<isa>.cpp: rx_avx2/tx_avx2/rx_avx512/tx_avx512 and the kernels they call, named *_avx2*/*_avx512*).
Disassembles each binary given and fails naming the first functions that break the rule.
  isa_check.py BINARY..."""
import re
import subprocess
import sys

FUNC = re.compile(r"^[0-9a-f]+ <(.*)>:$")
# VEX/EVEX instructions disassemble with a leading 'v' (vmovdqu, vpxor, vzeroupper...) or use ymm/zmm/mask registers.
BEYOND = re.compile(r"\tv[a-z0-9]+\s|%[yz]mm\d|%k[0-7]\b|\t(andn|bextr|bzhi|mulx|pdep|pext|rorx|sarx|shlx|shrx)\s")
ALLOWED = re.compile(r"_avx2|_avx512")


def main():
    bad = {}
    for binary in sys.argv[1:]:
        out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", binary], capture_output=True, text=True,
                             check=True).stdout
        fn = "?"
        for line in out.splitlines():
            m = FUNC.match(line)
            if m:
                fn = m.group(1)
                continue
            if BEYOND.search(line) and not ALLOWED.search(fn):
                bad.setdefault((binary, fn), line.strip())
    for (binary, fn), line in list(bad.items())[:10]:
        print(f"{binary}: {fn}: {line}")
    if bad:
        print(f"isa_check: {len(bad)} function(s) use instructions beyond x86-64-v2 outside the dispatched paths")
        return 1
    print(f"isa_check: {len(sys.argv) - 1} binaries: nothing beyond x86-64-v2 outside the dispatched burst functions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
