;; Throws and catches N exceptions in one call (`--invoke run FILE N`): the
;; exception heap must stay bounded (docs/PERFORMANCE.md, "Exceptions").
(module
  (tag $e (param i32))
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $sum i32)
    (loop $next
      (block $caught (result i32)
        (try_table (catch $e $caught) (throw $e (local.get $i)))
        (unreachable))
      (local.set $sum (i32.add (local.get $sum)))
      (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
    (local.get $sum)))
