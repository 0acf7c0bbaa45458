;; Memory-heavy loop: fills 1 MiB with a pattern, then sums it as i32 words,
;; `rounds` times. Exercises loads/stores with guard-page bounds checks.
(module
  (memory 17)
  (func (export "run") (param $rounds i32) (result i32)
    (local $i i32) (local $sum i32)
    (block $done
      (loop $round
        (br_if $done (i32.eqz (local.get $rounds)))
        (local.set $i (i32.const 0))
        (loop $fill
          (i32.store (local.get $i) (i32.xor (local.get $i) (local.get $rounds)))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br_if $fill (i32.lt_u (local.get $i) (i32.const 1048576))))
        (local.set $i (i32.const 0))
        (loop $sum
          (local.set $sum (i32.add (local.get $sum) (i32.load (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br_if $sum (i32.lt_u (local.get $i) (i32.const 1048576))))
        (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
        (br $round)))
    (local.get $sum)))
