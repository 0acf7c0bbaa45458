;; An identity export (host->Wasm calls) and a loop calling an imported host
;; function n times (Wasm->host calls); used by benches/calls.rs and examples/call_loop.rs.
(module
  (import "host" "inc" (func $inc (param i32) (result i32)))
  (func (export "identity") (param i32) (result i32) (local.get 0))
  (func (export "loop") (param $n i32) (result i32)
    (local $acc i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $acc (call $inc (local.get $acc)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $acc)))
