# Sourced by ci/test and ci/repeat: the build variants every test runs under, built the same way for both.
#   variant_options NAME   meson options of the variant (release, asan, tsan)
#   variant_skip NAME      meson test arguments that leave suites out of it
#   variant_env NAME       environment for its meson test run (KEY=VALUE words)
#   build_variant NAME     configures and builds $root/build-ci-NAME; its logs beside it

variant_options() {
  case $1 in
    release) echo "-Dbuildtype=release -Dwerror=true --prefix=/usr" ;;  # /usr: packaged as built
    # -O1 (what ASan's own docs advise; -O3 -g took 18 of CI's 31 minutes to compile) and -g1: line tables,
    # all a sanitizer's stack trace shows, at 60% of -g's compile time (vireo-fwd's options.cpp: 22 s, 37 s).
    asan)    echo "-Doptimization=1 -Ddebug=false -Dcpp_args=-g1 -Dc_args=-g1 -Db_ndebug=false -Dwerror=true
                   -Db_sanitize=address,undefined -Db_lundef=false -Dbench=disabled" ;;
    # -Wno-tsan: GCC's TSan does not model atomic_thread_fence, which orders vireo's rings against the device
    # (another process in the peer suites; docs/reliability.md says what TSan can and cannot see).
    tsan)    echo "-Doptimization=1 -Ddebug=false -Dcpp_args=['-g1','-Wno-tsan'] -Dc_args=-g1 -Db_ndebug=false
                   -Dwerror=true -Db_sanitize=thread -Db_lundef=false -Dbench=disabled" ;;
    *) echo "unknown variant $1" >&2; return 1 ;;
  esac
}

# The ASan pass leaves out the OVS-DPDK suite (80 s here): OVS's interplay is proven in the release pass, and
# vireo's code under OVS is the same vhost-user path the peer suites run under ASan. It also leaves out the
# benchmarks (their build, ~2 min) and the 'release-only' tests: the instruction-set check of the release
# binaries and the peer suite's second run on the baseline data path (the same code the unit suite runs under
# ASan at every ISA level against the device model). The VM suite is not built under sanitizers.
variant_skip() {
  case $1 in
    release) echo "" ;;
    asan|tsan) echo "--no-suite ovs --no-suite release-only" ;;
  esac
}

# VIREO_RESTART_ROUNDS: the sanitizer passes restart the back end 5 times, not 20 (vhost_control; 60 s less).
variant_env() {
  case $1 in
    release) echo "VIREO_RESTART_ROUNDS=20" ;;
    asan) echo "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 VIREO_RESTART_ROUNDS=5" ;;
    tsan) echo "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 VIREO_RESTART_ROUNDS=5" ;;
  esac
}

build_variant() {
  local name=$1 dir="$root/build-ci-$1" opts
  opts=$(variant_options "$name") || return 1
  # shellcheck disable=SC2086
  if [ -d "$dir" ]; then
    meson setup --reconfigure "$dir" $opts >"$dir.setup.log" 2>&1
  else
    meson setup "$dir" $opts >"$dir.setup.log" 2>&1
  fi || { cat "$dir.setup.log"; return 1; }
  ninja -C "$dir" >"$dir.build.log" 2>&1 || { tail -60 "$dir.build.log"; return 1; }
}
