(module
  (tag $e (param i32))
  (func $leaf (param i32) (result i32)
    (i32.add (i32.mul (local.get 0) (i32.const 3)) (i32.const 1)))
  ;; n calls of $leaf, no handler in scope
  (func (export "calls_plain") (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (call $leaf (local.get $acc)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $acc))
  ;; the same loop inside a try_table: every call is a try_call
  (func (export "calls_in_try") (param $n i32) (result i32)
    (local $acc i32)
    (block $h (result i32)
      (try_table (catch $e $h)
        (loop $l
          (local.set $acc (call $leaf (local.get $acc)))
          (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
      (local.get $acc)))
  ;; a callee that may throw (never does here): calls of it in a try_table body
  ;; are try_calls
  (func $leaf_may_throw (param i32) (result i32)
    (if (i32.eq (local.get 0) (i32.const -7)) (then (throw $e (i32.const 0))))
    (i32.add (i32.mul (local.get 0) (i32.const 3)) (i32.const 1)))
  (func (export "throwing_calls_plain") (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (call $leaf_may_throw (local.get $acc)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $acc))
  (func (export "throwing_calls_in_try") (param $n i32) (result i32)
    (local $acc i32)
    (block $h (result i32)
      (try_table (catch $e $h)
        (loop $l
          (local.set $acc (call $leaf_may_throw (local.get $acc)))
          (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
      (local.get $acc)))
  (func $down (param $d i32) (result i32)
    (if (i32.eqz (local.get $d)) (then (throw $e (i32.const 1))))
    (i32.add (call $down (i32.sub (local.get $d) (i32.const 1))) (i32.const 1)))
  ;; n throws, each from $depth frames below the catching function
  (func (export "throw_catch") (param $n i32) (param $depth i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc)
        (block $h (result i32)
          (try_table (result i32) (catch $e $h) (call $down (local.get $depth))))))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $acc))
)
