;; The module the runtime-only test compiles with `wazerox compile` and runs
;; without a compiler: a call out to the host, a call back in, and a trap.
(module
  (import "host" "add_ten" (func $add_ten (param i32) (result i32)))
  (func (export "run") (param $x i32) (result i32)
    (if (i32.lt_s (local.get $x) (i32.const 0)) (then unreachable))
    (i32.mul (call $add_ten (local.get $x)) (i32.const 2))))
