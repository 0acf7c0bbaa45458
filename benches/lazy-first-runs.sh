#!/bin/bash
# lazy-first-runs.sh WAZEROX_BINARY: first runs (no cache) of the corpus and of Yosys
# (../shared/corpus/big, after its fetch.sh; read-only there, so copy big/ to /tmp/big),
# eager then lazy (WAZEROX_LAZY=1), 3 rounds. docs/PERFORMANCE.md, "Lazy compilation".
B=$1
for r in 1 2 3; do
  for mode in eager lazy; do
    if [ $mode = lazy ]; then export WAZEROX_LAZY=1; else unset WAZEROX_LAZY; fi
    /work/shared/corpus/run.sh "$B" | sed "s/^/$mode $r /"
    /tmp/big/run-yosys.sh "$B" | sed "s/^/$mode $r /"
  done
done
