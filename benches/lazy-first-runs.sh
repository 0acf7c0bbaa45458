#!/bin/bash
# lazy-first-runs.sh WAZEROX_BINARY [ROUNDS]: first runs (no code cache) of Yosys
# (../shared/corpus/big after its fetch.sh; read-only there, so copy big/ to /tmp/big)
# in each `-C compilation` strategy, and of the corpus with `run`'s default (auto)
# against forced eager; ROUNDS rounds (default 3), modes interleaved within a round
# so that a change of machine load hits all of them. Prints wall seconds per run;
# the Yosys rows also print the CPU seconds (user+sys) from /usr/bin/time.
# docs/PERFORMANCE.md, "Lazy compilation".
set -u
B=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); rounds=${2:-3}
w=$(mktemp -d); trap 'rm -rf "$w"' EXIT
# run.sh and run-yosys.sh call `CLI run ARGS...`: one wrapper per strategy adds the flags.
wrap() { printf '#!/bin/sh\ncmd=$1; shift\nexec /usr/bin/time -a -o %s/cpu -f "%%U %%S" %s "$cmd" %s "$@"\n' "$w" "$B" "$2" >"$w/$1"; chmod +x "$w/$1"; }
wrap eager "-C compilation=eager"
wrap auto ""
wrap lazy "-C compilation=lazy"
wrap lazy-bg "-C compilation=lazy -C background-compilation=y"
wrap lazy-fast "-C compilation=lazy-fast -W max-wasm-stack=16777216"
wrap lazy-fast-bg "-C compilation=lazy-fast -C background-compilation=y -W max-wasm-stack=16777216"
for r in $(seq "$rounds"); do
  for mode in lazy lazy-bg lazy-fast lazy-fast-bg ${YOSYS_EAGER:+eager}; do
    : >"$w/cpu"
    out=$(/tmp/big/run-yosys.sh "$w/$mode")
    echo "yosys $mode $r $out cpu $(awk '{print $1 + $2}' "$w/cpu") load $(cut -d' ' -f1 /proc/loadavg)"
  done
  for mode in eager auto; do
    /work/shared/corpus/run.sh "$w/$mode" | sed "s/^/corpus $mode $r /"
  done
done
