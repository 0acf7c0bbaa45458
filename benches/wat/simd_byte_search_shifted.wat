;; simd_byte_search.wat with one extra load before the loop (added and taken back out
;; of the count), which only moves the loop by a few bytes in the machine code: the
;; loop is tight enough that its position relative to the CPU's 64-byte fetch lines
;; decides its speed (see docs/PERFORMANCE.md).
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
    (local.set $count (i32.sub (i32.const 0) (i32.load8_u (i32.const 7))))
    (loop $scan
      (local.set $count (i32.add (local.get $count)
        (i32.popcnt (i8x16.bitmask
          (i8x16.eq (v128.load (local.get $i)) (local.get $splat))))))
      (br_if $scan (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 16)))
                             (i32.const 1048576))))
    (i32.add (local.get $count) (i32.load8_u (i32.const 7)))))
