#!/usr/bin/env bash
# fuzz.sh: build the libFuzzer harnesses (tests/fuzz/) and run each for a while.
#
#   scripts/fuzz.sh [SECONDS] [NAME...]
#
# SECONDS per harness (default 60); NAME: config dirsync escape guard metrics
# plan scrub snapshot sync timeparse (default: every tests/fuzz/fuzz_*.c). Builds
# with clang and OFFBOARD_FUZZ=ON into build-fuzz/ (OFFBOARD_FUZZ_BUILD
# overrides), installs clang first if it is missing. Each harness reads
# tests/fuzz/corpus/NAME/ and writes what it finds to
# build-fuzz/fuzz-out/NAME/ (new inputs in corpus/, crashes as crash-* etc.),
# never into the committed corpus: copy a reproducer into
# tests/fuzz/corpus/NAME/ by hand, with the fix. Stops by itself; exits 1 if
# any harness crashed or an oracle failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
[ $# -gt 0 ] && shift
build=${OFFBOARD_FUZZ_BUILD:-$root/build-fuzz}

cc=$(command -v clang || command -v clang-18 || command -v clang-17 || command -v clang-16 || command -v clang-15 ||
        command -v clang-14 || true)
if [ -z "$cc" ]; then
        echo "fuzz.sh: installing clang" >&2
        sudo=; [ "$(id -u)" -ne 0 ] && sudo=sudo
        $sudo apt-get update -q
        $sudo apt-get install -y -q clang
        cc=$(command -v clang)
fi

if [ $# -gt 0 ]; then
        names=("$@")
else
        names=()
        for f in "$root"/tests/fuzz/fuzz_*.c; do
                n=$(basename "$f" .c)
                n=${n#fuzz_}
                [ "$n" = support ] || names+=("$n")
        done
fi

CC=$cc cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOFFBOARD_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j2 --target "${names[@]/#/fuzz_}"

status=0
summary=()
for n in "${names[@]}"; do
        out=$build/fuzz-out/$n
        mkdir -p "$out/corpus"
        echo "== fuzz_$n for ${seconds}s (log: $out/log)" >&2
        # New inputs go to out/corpus (first directory); the committed corpus
        # is read only. Fork mode keeps going after a crash (each one is kept
        # as a crash-* file), so a known failure in the corpus does not stop
        # the search. Leaks are checked, and each input is capped in size and
        # time so a slow input shows up as a timeout, not a hang.
        set +e
        (cd "$out" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                "$build/fuzz_$n" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
                -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
                -artifact_prefix="$out/" -print_final_stats=1 \
                "$out/corpus" "$root/tests/fuzz/corpus/$n") >"$out/log" 2>&1
        rc=$?
        set -e
        # Fork mode's status lines: "#RUNS: cov: C ft: F corp: N exec/s S oom/timeout/crash: a/b/c time: Ts".
        last=$(grep -E '^#[0-9]+: cov:' "$out/log" | tail -1 || true)
        runs=$(sed -n 's/^#\([0-9]*\):.*/\1/p' <<<"$last")
        speed=$(grep -o 'exec/s:\? [0-9]*' <<<"$last" | grep -o '[0-9]*$' || true)
        cov=$(grep -o 'cov: [0-9]*' <<<"$last" || true)
        fails=$(grep -o 'oom/timeout/crash: [0-9/]*' <<<"$last" | cut -d' ' -f2 || true)
        line="fuzz_$n: ${runs:-?} runs, ${speed:-?} exec/s, ${cov:-cov: ?}, oom/timeout/crash ${fails:-?}"
        if ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* >/dev/null 2>&1; then
                rc=1
        fi
        if [ $rc -ne 0 ]; then
                status=1
                line="$line, FAILED: $(find "$out" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' -o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | wc -l) reproducer(s) in $out/"
                grep -m1 -E 'oracle failed|ERROR: |runtime error' "$out/log" >&2 || true
        fi
        summary+=("$line")
done
printf '%s\n' "${summary[@]}"
exit $status
