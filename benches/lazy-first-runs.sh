#!/bin/bash
# lazy-first-runs.sh WAZEROX_BINARY: first runs (no cache) of the corpus and of Yosys
# (../shared/corpus/big, after its fetch.sh; read-only there, so copy big/ to /tmp/big),
# eager, lazy (WAZEROX_LAZY=1) and lazy with the fast tier (WAZEROX_LAZY=fast, which
# Yosys needs a 16 MiB Wasm stack for), 3 rounds. docs/PERFORMANCE.md, "Lazy compilation".
B=$1
for r in 1 2 3; do
  for mode in eager lazy fast; do
    stack=()
    case $mode in
      eager) unset WAZEROX_LAZY ;;
      lazy) export WAZEROX_LAZY=1 ;;
      fast) export WAZEROX_LAZY=fast; stack=(-W max-wasm-stack=16777216) ;;
    esac
    /work/shared/corpus/run.sh "$B" | sed "s/^/$mode $r /"
    /tmp/big/run-yosys.sh "$B" "${stack[@]}" | sed "s/^/$mode $r /"
  done
done
