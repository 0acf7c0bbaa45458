;; Dot product of two 4096-element f32 vectors, repeated `reps` times.
(module
  (memory 1)
  (func (export "init")
    (local $i i32)
    (loop $fill
      (f32.store (i32.shl (local.get $i) (i32.const 2))
        (f32.convert_i32_s (i32.sub (i32.rem_u (local.get $i) (i32.const 7)) (i32.const 3))))
      (f32.store offset=16384 (i32.shl (local.get $i) (i32.const 2))
        (f32.mul (f32.convert_i32_u (i32.rem_u (local.get $i) (i32.const 5))) (f32.const 0.5)))
      (br_if $fill (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                             (i32.const 4096)))))
  (func (export "run") (param $reps i32) (result i32)
    (local $i i32) (local $acc v128) (local $total f32)
    (loop $rep
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $i (i32.const 0))
      (loop $lanes
        (local.set $acc (f32x4.add (local.get $acc)
          (f32x4.mul (v128.load (local.get $i)) (v128.load offset=16384 (local.get $i)))))
        (br_if $lanes (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 16)))
                                (i32.const 16384))))
      (local.set $total (f32.add (local.get $total)
        (f32.add
          (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
          (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc))))))
      (br_if $rep (local.tee $reps (i32.sub (local.get $reps) (i32.const 1)))))
    (i32.trunc_sat_f32_s (local.get $total))))
