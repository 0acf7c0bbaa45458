;; Counts the bytes equal to a needle in 1 MiB, 16 at a time (eq, bitmask, popcnt).
(module
  (memory 17)
  (func (export "init")
    (local $i i32)
    (loop $fill
      ;; Pseudo-random bytes, so every needle value occurs.
      (i32.store8 (local.get $i)
        (i32.shr_u (i32.mul (local.get $i) (i32.const 2654435761)) (i32.const 24)))
      (br_if $fill (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                             (i32.const 1048576)))))
  (func (export "run") (param $needle i32) (result i32)
    (local $i i32) (local $count i32) (local $splat v128)
    (local.set $splat (i8x16.splat (local.get $needle)))
    (loop $scan
      (local.set $count (i32.add (local.get $count)
        (i32.popcnt (i8x16.bitmask
          (i8x16.eq (v128.load (local.get $i)) (local.get $splat))))))
      (br_if $scan (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 16)))
                             (i32.const 1048576))))
    (local.get $count)))
