;; A := A x B for 4x4 f32 matrices, `n` times. B is a permutation matrix, so the
;; values stay exact and both runtimes must agree bit for bit.
(module
  (memory 1)
  (data (i32.const 0)
    "\00\00\80\3f\00\00\00\40\00\00\40\40\00\00\80\40"   ;; A: 1 2 3 4
    "\00\00\a0\40\00\00\c0\40\00\00\e0\40\00\00\00\41"   ;;    5 6 7 8
    "\00\00\10\41\00\00\20\41\00\00\30\41\00\00\40\41"   ;;    9 10 11 12
    "\00\00\50\41\00\00\60\41\00\00\70\41\00\00\80\41"   ;;    13 14 15 16
    "\00\00\00\00\00\00\80\3f\00\00\00\00\00\00\00\00"   ;; B: cyclic shift
    "\00\00\00\00\00\00\00\00\00\00\80\3f\00\00\00\00"
    "\00\00\00\00\00\00\00\00\00\00\00\00\00\00\80\3f"
    "\00\00\80\3f\00\00\00\00\00\00\00\00\00\00\00\00")
  (func (export "init"))
  (func (export "run") (param $n i32) (result i32)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128) (local $row i32)
    (local.set $b0 (v128.load (i32.const 64)))
    (local.set $b1 (v128.load (i32.const 80)))
    (local.set $b2 (v128.load (i32.const 96)))
    (local.set $b3 (v128.load (i32.const 112)))
    (loop $iter
      (local.set $row (i32.const 0))
      (loop $rows
        ;; Row r of A x B depends only on row r of A, so it can replace it in place.
        (v128.store (local.get $row)
          (f32x4.add
            (f32x4.add
              (f32x4.mul (f32x4.splat (f32.load (local.get $row))) (local.get $b0))
              (f32x4.mul (f32x4.splat (f32.load offset=4 (local.get $row))) (local.get $b1)))
            (f32x4.add
              (f32x4.mul (f32x4.splat (f32.load offset=8 (local.get $row))) (local.get $b2))
              (f32x4.mul (f32x4.splat (f32.load offset=12 (local.get $row))) (local.get $b3)))))
        (br_if $rows (i32.lt_u (local.tee $row (i32.add (local.get $row) (i32.const 16)))
                               (i32.const 64))))
      (br_if $iter (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    ;; The first row identifies how far the rows have rotated.
    (i32.add
      (i32.mul (i32.trunc_f32_s (f32.load (i32.const 0))) (i32.const 1000))
      (i32.trunc_f32_s (f32.load (i32.const 4))))))
