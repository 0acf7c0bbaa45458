;; A WASIX program run by `wazerox run` (crates/wazerox-cli/tests/cli.rs): a thread
;; parks in futex_wait until main wakes it; main signals it (SIGUSR1, reaching the
;; exported callback in that thread), joins it, prints what it saw and ends with
;; thread_exit, which exits 0 once no other thread runs.
(module
  (import "wasix_32v1" "futex_wait" (func $futex_wait (param i32 i32 i32 i32) (result i32)))
  (import "wasix_32v1" "futex_wake" (func $futex_wake (param i32 i32) (result i32)))
  (import "wasix_32v1" "thread_spawn_v2" (func $spawn (param i32 i32) (result i32)))
  (import "wasix_32v1" "thread_join" (func $join (param i32) (result i32)))
  (import "wasix_32v1" "thread_sleep" (func $sleep (param i64) (result i32)))
  (import "wasix_32v1" "thread_signal" (func $signal (param i32 i32) (result i32)))
  (import "wasix_32v1" "thread_exit" (func $thread_exit (param i32)))
  (import "wasix_32v1" "callback_signal" (func $callback_signal (param i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (export "memory" (memory 0))
  (data (i32.const 4096) "on_signal")
  (data (i32.const 4112) "woken 1, signal 10, joined\n")
  (func (export "on_signal") (param $signal i32)
    (i32.atomic.store (i32.const 1080) (local.get $signal)))
  (func (export "wasi_thread_start") (param $tid i32) (param $start i32)
    ;; [0] stays 0: only futex_wake ends this wait (no timeout: option at 2000 is none).
    (drop (call $futex_wait (i32.const 0) (i32.const 0) (i32.const 2000) (i32.const 1064)))
    (loop $until_signalled
      (drop (call $sleep (i64.const 1000000)))
      (br_if $until_signalled (i32.eqz (i32.atomic.load (i32.const 1080))))))
  (func $check (param $ok i32) (if (i32.eqz (local.get $ok)) (then (unreachable))))
  (func (export "_start")
    (call $callback_signal (i32.const 4096) (i32.const 9))
    (call $check (i32.eqz (call $spawn (i32.const 512) (i32.const 1028))))
    (loop $until_woken
      (drop (call $futex_wake (i32.const 0) (i32.const 1036)))
      (if (i32.eqz (i32.load8_u (i32.const 1036)))
        (then (drop (call $sleep (i64.const 1000000))) (br $until_woken))))
    (call $check (i32.eqz (call $signal (i32.load (i32.const 1028)) (i32.const 10))))
    (call $check (i32.eqz (call $join (i32.load (i32.const 1028)))))
    (call $check (i32.eq (i32.load8_u (i32.const 1064)) (i32.const 1)))
    (call $check (i32.eq (i32.load (i32.const 1080)) (i32.const 10)))
    (i32.store (i32.const 3000) (i32.const 4112))
    (i32.store (i32.const 3004) (i32.const 27))
    (drop (call $fd_write (i32.const 1) (i32.const 3000) (i32.const 1) (i32.const 3008)))
    (call $thread_exit (i32.const 1))))
