;; GC stress test (docs/gc.md, docs/PERFORMANCE.md): binary trees of structs.
;; `trees long iters depth` builds a long-lived tree of depth `long`, then
;; `iters` short-lived trees of depth `depth`, counting every node by walking
;; the trees, and returns the total count: iters * (2^(depth+1) - 1) +
;; (2^(long+1) - 1). Everything happens in one call, so a runtime must collect
;; inside it; the long-lived tree (a local) and the half-built trees (on the
;; operand stack while their right half is built) must survive.
;;   wazerox run -W gc=y --invoke trees tests/gc/binary-trees.wat 16 50 20
;;   wasmtime run -W gc=y --invoke trees tests/gc/binary-trees.wat 16 50 20
(module
  (type $tree (struct (field $l (ref null $tree)) (field $r (ref null $tree))))
  (func $make (param $d i32) (result (ref $tree))
    (if (result (ref $tree)) (i32.eqz (local.get $d))
      (then (struct.new_default $tree))
      (else
        (struct.new $tree
          (call $make (i32.sub (local.get $d) (i32.const 1)))
          (call $make (i32.sub (local.get $d) (i32.const 1)))))))
  (func $check (param $t (ref null $tree)) (result i32)
    (if (result i32) (ref.is_null (local.get $t))
      (then (i32.const 0))
      (else
        (i32.add (i32.const 1)
          (i32.add
            (call $check (struct.get $tree $l (local.get $t)))
            (call $check (struct.get $tree $r (local.get $t))))))))
  (func (export "trees") (param $long i32) (param $iters i32) (param $d i32) (result i32)
    (local $kept (ref null $tree))
    (local $total i32)
    (local.set $kept (call $make (local.get $long)))
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $iters)))
        (local.set $total
          (i32.add (local.get $total) (call $check (call $make (local.get $d)))))
        (local.set $iters (i32.sub (local.get $iters) (i32.const 1)))
        (br $again)))
    (i32.add (local.get $total) (call $check (local.get $kept)))))
