/* A mutex and condition variables built on memory.atomic.wait32/notify: exact
   counts under contention, a bounded producer/consumer queue, and the results of
   waits with timeouts. */
#include <stdio.h>
#include "wt.h"

#define THREADS 8
#define INCREMENTS 20000
#define PRODUCERS 3
#define CONSUMERS 3
#define ITEMS 4000
#define CAPACITY 16

static char stacks[THREADS][WT_STACK_SIZE] __attribute__((aligned(16)));
static wt_thread threads[THREADS];

static mutex_t counter_lock;
static long long counter; /* plain: only touched under counter_lock */

static void increment(wt_thread *t) {
  (void)t;
  for (int i = 0; i < INCREMENTS; i++) {
    mutex_lock(&counter_lock);
    counter += 1;
    mutex_unlock(&counter_lock);
  }
}

static mutex_t queue_lock;
static cond_t not_empty, not_full;
static int queue[CAPACITY], head, count;

static void push(int value) {
  mutex_lock(&queue_lock);
  while (count == CAPACITY) cond_wait(&not_full, &queue_lock);
  queue[(head + count) % CAPACITY] = value;
  count++;
  cond_signal(&not_empty);
  mutex_unlock(&queue_lock);
}

static int pop(void) {
  mutex_lock(&queue_lock);
  while (count == 0) cond_wait(&not_empty, &queue_lock);
  int value = queue[head];
  head = (head + 1) % CAPACITY;
  count--;
  cond_signal(&not_full);
  mutex_unlock(&queue_lock);
  return value;
}

static void produce(wt_thread *t) {
  (void)t;
  for (int i = 1; i <= ITEMS; i++) push(i);
}

static int consumed_items, consumed_sum;

static void consume(wt_thread *t) {
  (void)t;
  int items = 0, sum = 0;
  for (int value; (value = pop()) >= 0;) {
    items++;
    sum += value;
  }
  __atomic_fetch_add(&consumed_items, items, SEQ);
  __atomic_fetch_add(&consumed_sum, sum, SEQ);
}

/* A condition broadcast releases every waiter. */
static mutex_t gate_lock;
static cond_t gate_opened;
static int gate_open, gate_waiting, gate_passed;

static void wait_at_gate(wt_thread *t) {
  (void)t;
  mutex_lock(&gate_lock);
  gate_waiting++;
  while (!gate_open) cond_wait(&gate_opened, &gate_lock);
  gate_passed++;
  mutex_unlock(&gate_lock);
}

static int failures;

static void check(int ok, const char *what) {
  if (!ok) {
    printf("FAILED: %s\n", what);
    failures++;
  }
}

int main(void) {
  for (int t = 0; t < THREADS; t++)
    check(wt_spawn(&threads[t], stacks[t], increment, 0) > 0, "spawn");
  for (int t = 0; t < THREADS; t++) wt_join(&threads[t]);
  printf("mutex: %d threads x %d = %lld\n", THREADS, INCREMENTS, counter);
  check(counter == (long long)THREADS * INCREMENTS, "mutex count");
  check(counter_lock.state == 0, "mutex free at the end");

  for (int t = 0; t < PRODUCERS; t++) wt_spawn(&threads[t], stacks[t], produce, 0);
  for (int t = 0; t < CONSUMERS; t++)
    wt_spawn(&threads[PRODUCERS + t], stacks[PRODUCERS + t], consume, 0);
  for (int t = 0; t < PRODUCERS; t++) wt_join(&threads[t]);
  for (int t = 0; t < CONSUMERS; t++) push(-1); /* one end marker per consumer */
  for (int t = 0; t < CONSUMERS; t++) wt_join(&threads[PRODUCERS + t]);
  printf("queue: produced %d consumed %d sum %d\n", PRODUCERS * ITEMS, consumed_items,
         consumed_sum);
  check(consumed_items == PRODUCERS * ITEMS, "items");
  check(consumed_sum == PRODUCERS * (ITEMS * (ITEMS + 1) / 2), "sum");

  for (int t = 0; t < 4; t++) wt_spawn(&threads[t], stacks[t], wait_at_gate, 0);
  for (;;) {
    mutex_lock(&gate_lock);
    int waiting = gate_waiting;
    mutex_unlock(&gate_lock);
    if (waiting == 4) break;
    futex_wait(&gate_waiting, waiting, 1000000);
  }
  mutex_lock(&gate_lock);
  gate_open = 1;
  cond_broadcast(&gate_opened);
  mutex_unlock(&gate_lock);
  for (int t = 0; t < 4; t++) wt_join(&threads[t]);
  printf("broadcast: %d of 4 passed\n", gate_passed);
  check(gate_passed == 4, "broadcast");

  static int word;
  int timed_out = futex_wait(&word, 0, 10 * 1000 * 1000);
  int not_equal = futex_wait(&word, 1, -1);
  unsigned nobody = futex_wake(&word, 1);
  printf("waits: timed out %d, not equal %d, woken by notify with nobody waiting %u\n",
         timed_out, not_equal, nobody);
  check(timed_out == 2 && not_equal == 1 && nobody == 0, "wait results");

  printf("mutex_condvar: %s\n", failures ? "FAILED" : "ok");
  return failures != 0;
}
