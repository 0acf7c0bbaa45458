/* wasi-threads without pthreads, for the test programs of tests/threads.
 *
 * Zig's wasi-libc is single-threaded (pthread_create is a stub), so threads are
 * spawned with the `wasi` `thread-spawn` import directly and synchronise with
 * futexes on memory.atomic.wait32/notify. Spawned threads must not call malloc or
 * stdio; only the main thread prints. */
#ifndef WT_H
#define WT_H
#include <stdint.h>

#define SEQ __ATOMIC_SEQ_CST
#define WT_STACK_SIZE 65536
#define WT_ALL 0xffffffffu

__attribute__((import_module("wasi"), import_name("thread-spawn")))
int32_t wt_thread_spawn(void *start_arg);

typedef struct wt_thread {
  char *stack_top; /* first: read by wasi_thread_start (wt_start.s) */
  void (*body)(struct wt_thread *);
  void *arg;
  int tid;
  int result; /* the thread's exit code, read after done */
  int done;
} wt_thread;

/* --- futexes ------------------------------------------------------------ */

/* 0 woken, 1 not equal, 2 timed out (timeout_ns < 0: forever). */
static inline int futex_wait(int *address, int expected, long long timeout_ns) {
  return __builtin_wasm_memory_atomic_wait32(address, expected, timeout_ns);
}
static inline unsigned futex_wake(int *address, unsigned count) {
  return __builtin_wasm_memory_atomic_notify(address, count);
}

/* --- threads ------------------------------------------------------------ */

/* Called by wasi_thread_start on the thread's own stack. */
void wt_thread_main(int tid, wt_thread *t) {
  t->tid = tid;
  t->body(t);
  __atomic_store_n(&t->done, 1, SEQ);
  futex_wake(&t->done, WT_ALL);
}

/* Starts `body(t)` on a new thread using `stack` (WT_STACK_SIZE bytes); returns the
   thread id (> 0) or a negative value. */
static int wt_spawn(wt_thread *t, char *stack, void (*body)(wt_thread *), void *arg) {
  t->stack_top = stack + WT_STACK_SIZE;
  t->body = body;
  t->arg = arg;
  t->tid = 0;
  t->result = 0;
  __atomic_store_n(&t->done, 0, SEQ);
  return wt_thread_spawn(t);
}

/* Waits until `t` has finished; returns its exit code. */
static int wt_join(wt_thread *t) {
  while (!__atomic_load_n(&t->done, SEQ)) futex_wait(&t->done, 0, -1);
  return t->result;
}

/* --- a mutex (0 free, 1 locked, 2 locked with waiters) ------------------ */

typedef struct { int state; } mutex_t;

static void mutex_lock(mutex_t *m) {
  int c = 0;
  if (__atomic_compare_exchange_n(&m->state, &c, 1, 0, SEQ, SEQ)) return;
  if (c != 2) c = __atomic_exchange_n(&m->state, 2, SEQ);
  while (c != 0) {
    futex_wait(&m->state, 2, -1);
    c = __atomic_exchange_n(&m->state, 2, SEQ);
  }
}

static void mutex_unlock(mutex_t *m) {
  if (__atomic_fetch_sub(&m->state, 1, SEQ) != 1) {
    __atomic_store_n(&m->state, 0, SEQ);
    futex_wake(&m->state, 1);
  }
}

/* --- a condition variable: a sequence number waited on ------------------ */

typedef struct { int seq; } cond_t;

static void cond_wait(cond_t *c, mutex_t *m) {
  int seq = __atomic_load_n(&c->seq, SEQ);
  mutex_unlock(m);
  futex_wait(&c->seq, seq, -1);
  mutex_lock(m);
}

static void cond_signal(cond_t *c) {
  __atomic_fetch_add(&c->seq, 1, SEQ);
  futex_wake(&c->seq, 1);
}

static void cond_broadcast(cond_t *c) {
  __atomic_fetch_add(&c->seq, 1, SEQ);
  futex_wake(&c->seq, WT_ALL);
}

/* --- a reusable barrier ------------------------------------------------- */

typedef struct { int arrived, total, generation; } barrier_t;

static void barrier_wait(barrier_t *b) {
  int generation = __atomic_load_n(&b->generation, SEQ);
  if (__atomic_add_fetch(&b->arrived, 1, SEQ) == b->total) {
    /* Reset before releasing: released threads may arrive again at once. */
    __atomic_store_n(&b->arrived, 0, SEQ);
    __atomic_add_fetch(&b->generation, 1, SEQ);
    futex_wake(&b->generation, WT_ALL);
  } else {
    while (__atomic_load_n(&b->generation, SEQ) == generation)
      futex_wait(&b->generation, generation, -1);
  }
}

#endif
