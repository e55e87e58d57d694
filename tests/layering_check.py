#!/usr/bin/env python3
"""The layering the README and docs/architecture.md describe, checked on every #include "...":

  libraries  base <- iova <- mempool <- offload <- pmd <- telemetry;  mempool <- capture
             a library includes only its own headers and those of the libraries it depends on;
  pmd/src    common <- vq <- transport <- datapath <- net <- devices
             a file includes only internal headers of its own layer or one below it (by path from pmd/src:
             "datapath/queue_pair.hpp"); pmd's public headers (include/vireo/pmd/) never include src/.

And no file in a folder the build adds to the include path (every folder with a meson.build: meson adds each
target's own folder) may be named like a C++ standard header: `#include <compare>` found bench/compare, a shell
script, before the compiler's (the release build broke on it).

Exit 0 when it holds, 1 with one line per violation (file:line: what it includes and why that is upward).
--selftest checks the checker on files it writes: an upward include in each kind must be caught.
"""
import pathlib
import re
import sys
import tempfile

# Each library and the libraries whose headers it may include (transitively closed below).
LIBS = {
    "base": [],
    "iova": ["base"],
    "mempool": ["iova"],
    "offload": ["mempool"],
    "pmd": ["offload", "mempool"],
    "capture": ["mempool"],
    "telemetry": ["pmd"],
}
PMD_LAYERS = ["common", "vq", "transport", "datapath", "net", "devices"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


# The C++20 standard library's headers without an extension (C++ <cname> included).
STD_HEADERS = set("""algorithm any array atomic barrier bit bitset charconv chrono codecvt compare complex concepts
condition_variable coroutine deque exception execution expected filesystem format forward_list fstream functional
future initializer_list iomanip ios iosfwd iostream istream iterator latch limits list locale map memory
memory_resource mutex new numbers numeric optional ostream queue random ranges ratio regex scoped_allocator
semaphore set shared_mutex source_location span sstream stack stdexcept stop_token streambuf string string_view
syncstream system_error thread tuple type_traits typeindex typeinfo unordered_map unordered_set utility valarray
variant vector version cassert cctype cerrno cfenv cfloat cinttypes climits clocale cmath csetjmp csignal cstdarg
cstddef cstdint cstdio cstdlib cstring ctime cuchar cwchar cwctype""".split())


def shadowed_std_headers(root):
    root = pathlib.Path(root)
    out = []
    for mb in sorted(root.rglob("meson.build")):
        if any(part.startswith(("build", ".")) for part in mb.relative_to(root).parts[:-1]):
            continue
        for f in sorted(mb.parent.iterdir()):
            if f.is_file() and f.name in STD_HEADERS:
                out.append(f"{f.relative_to(root)}: named like the standard header <{f.name}> in a folder on the "
                           "include path: rename it")
    return out


def allowed_libs(lib):
    seen, pending = {lib}, list(LIBS[lib])
    while pending:
        d = pending.pop()
        if d not in seen:
            seen.add(d)
            pending += LIBS[d]
    return seen


def check(root):
    root = pathlib.Path(root)
    problems = []
    for lib in LIBS:
        ok_libs = allowed_libs(lib)
        for f in sorted((root / lib).rglob("*")):
            if f.suffix not in (".hpp", ".cpp", ".h") or not f.is_file():
                continue
            rel = f.relative_to(root)
            text = f.read_text(errors="replace")
            for m in INCLUDE.finditer(text):
                inc = m.group(1)
                line = text.count("\n", 0, m.start()) + 1
                where = f"{rel}:{line}"
                if inc.startswith("vireo/"):
                    target = inc.split("/")[1]
                    if target not in LIBS:
                        problems.append(f"{where}: includes {inc}: no library named {target}")
                    elif target not in ok_libs:
                        problems.append(f"{where}: includes {inc}: {lib} does not depend on {target} "
                                        f"(it may include {', '.join(sorted(ok_libs))})")
                    continue
                if lib != "pmd":
                    if not (f.parent / inc).exists():
                        problems.append(f"{where}: includes {inc}, not beside it and not a vireo/ header")
                    continue
                parts = rel.parts  # pmd/include/... or pmd/src/LAYER/...
                if parts[1] == "include":
                    problems.append(f"{where}: public header includes {inc}: internal headers stay in pmd/src")
                    continue
                own = parts[2]
                inc_layer = inc.split("/")[0]
                if own not in PMD_LAYERS:
                    problems.append(f"{where}: {own}/ is no layer of pmd/src ({', '.join(PMD_LAYERS)})")
                elif inc_layer not in PMD_LAYERS or not (root / "pmd" / "src" / inc).exists():
                    problems.append(f"{where}: includes {inc}: name internal headers by their path from pmd/src")
                elif PMD_LAYERS.index(inc_layer) > PMD_LAYERS.index(own):
                    problems.append(f"{where}: includes {inc}: {inc_layer} is above {own} "
                                    f"(pmd/src layers, lowest first: {' <- '.join(PMD_LAYERS)})")
    return problems


def selftest():
    cases = {
        "pmd/src/vq/a.cpp": '#include "datapath/b.hpp"\n',           # layer upward
        "pmd/include/vireo/pmd/c.hpp": '#include "vq/d.hpp"\n',       # public -> internal
        "mempool/src/e.cpp": '#include "vireo/pmd/f.hpp"\n',          # library upward
        "pmd/src/net/g.cpp": '#include "h.hpp"\n',                    # not by path
    }
    fine = {
        "pmd/src/datapath/b.hpp": '#include "vq/d.hpp"\n#include "vireo/mempool/x.hpp"\n',
        "pmd/src/vq/d.hpp": "",
        "telemetry/src/t.cpp": '#include "vireo/pmd/x.hpp"\n#include "vireo/base/y.hpp"\n',
    }
    with tempfile.TemporaryDirectory() as d:
        for name, text in {**cases, **fine}.items():
            p = pathlib.Path(d) / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        found = check(d)
        pathlib.Path(d, "bench").mkdir()
        pathlib.Path(d, "bench", "meson.build").write_text("")
        pathlib.Path(d, "bench", "compare").write_text("#!/bin/sh\n")
        pathlib.Path(d, "bench", "profile").write_text("#!/bin/sh\n")
        shadows = shadowed_std_headers(d)
    if [p.split(":")[0] for p in shadows] != ["bench/compare"]:
        print("layering_check selftest FAILED: shadowed standard headers found:", shadows)
        return 1
    caught = [c for c in cases if any(p.startswith(c + ":") for p in found)]
    false = [p for p in found if not any(p.startswith(c + ":") for c in cases)]
    if len(caught) != len(cases) or false:
        print("layering_check selftest FAILED: missed", sorted(set(cases) - set(caught)), "wrongly flagged", false)
        return 1
    print(f"layering_check selftest: {len(cases)} upward includes caught, {len(fine)} right ones passed, "
          "a script named <compare> caught")
    return 0


def main():
    if sys.argv[1:2] == ["--selftest"]:
        return selftest()
    root = sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent
    problems = check(root) + shadowed_std_headers(root)
    for p in problems:
        print(p)
    if problems:
        print(f"layering_check: {len(problems)} problems (see this file's docstring)")
        return 1
    print("layering_check: every include goes down or sideways; no file shadows a standard header")
    return 0


if __name__ == "__main__":
    sys.exit(main())
