/* Many short-lived threads: 400 threads, at most 8 alive at a time (stacks are
   reused once their thread is joined). Each returns an exit code that the main
   thread collects; thread ids are unique, positive and below 2^29. */
#include <stdio.h>
#include <stdlib.h>
#include "wt.h"

#define TOTAL 400
#define SLOTS 8

static char stacks[SLOTS][WT_STACK_SIZE] __attribute__((aligned(16)));
static wt_thread slots[SLOTS];
static int slot_index[SLOTS];
static int tids[TOTAL], codes[TOTAL];
static int running_now, most_at_once;

static void work(wt_thread *t) {
  int i = (int)(long)t->arg;
  int now = __atomic_add_fetch(&running_now, 1, SEQ);
  int most = __atomic_load_n(&most_at_once, SEQ);
  while (now > most && !__atomic_compare_exchange_n(&most_at_once, &most, now, 0, SEQ, SEQ)) {
  }
  unsigned x = (unsigned)i * 2654435761u;
  for (int k = 0; k < 1000; k++) x = x * 1103515245u + 12345u;
  t->result = (int)((unsigned)i * (unsigned)i % 251u);
  __atomic_sub_fetch(&running_now, 1, SEQ);
  (void)x;
}

static int by_value(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

int main(void) {
  long long code_sum = 0, expected_sum = 0;
  for (int i = 0; i < TOTAL; i++) {
    int s = i % SLOTS;
    if (i >= SLOTS) {
      int j = slot_index[s];
      codes[j] = wt_join(&slots[s]);
      tids[j] = slots[s].tid;
    }
    slot_index[s] = i;
    int tid = wt_spawn(&slots[s], stacks[s], work, (void *)(long)i);
    if (tid <= 0) {
      printf("spawn %d failed: %d\n", i, tid);
      return 1;
    }
  }
  for (int s = 0; s < SLOTS; s++) {
    int j = slot_index[s];
    codes[j] = wt_join(&slots[s]);
    tids[j] = slots[s].tid;
  }
  for (int i = 0; i < TOTAL; i++) {
    code_sum += codes[i];
    expected_sum += (long long)((unsigned)i * (unsigned)i % 251u);
  }
  qsort(tids, TOTAL, sizeof tids[0], by_value);
  int unique = 1;
  for (int i = 0; i < TOTAL; i++) {
    if (tids[i] <= 0 || tids[i] >= (1 << 29)) unique = 0;
    if (i > 0 && tids[i] == tids[i - 1]) unique = 0;
  }
  printf("many_threads: %d threads, at most %d at once, exit codes sum %lld (expected %lld), "
         "thread ids %s\n",
         TOTAL, most_at_once <= SLOTS ? SLOTS : most_at_once, code_sum, expected_sum,
         unique ? "unique, positive, below 2^29" : "NOT UNIQUE");
  return code_sum != expected_sum || !unique || most_at_once > SLOTS;
}
