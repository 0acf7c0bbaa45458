/* A reusable barrier on wait/notify: in every phase each thread writes its slot,
   waits at the barrier, and checks that every slot holds the phase. */
#include <stdio.h>
#include "wt.h"

#define THREADS 6
#define PHASES 300

static char stacks[THREADS][WT_STACK_SIZE] __attribute__((aligned(16)));
static wt_thread threads[THREADS];
static barrier_t barrier = {0, THREADS, 0};
static int slots[THREADS];
static int errors, last_phase_seen;

static void run(wt_thread *t) {
  int me = (int)(long)t->arg;
  int mine = 0;
  for (int phase = 1; phase <= PHASES; phase++) {
    __atomic_store_n(&slots[me], phase, SEQ);
    barrier_wait(&barrier);
    for (int s = 0; s < THREADS; s++)
      if (__atomic_load_n(&slots[s], SEQ) != phase) mine++;
    /* Nobody starts the next phase before everybody has checked this one. */
    barrier_wait(&barrier);
  }
  __atomic_fetch_add(&errors, mine, SEQ);
  if (me == 0) last_phase_seen = __atomic_load_n(&slots[THREADS - 1], SEQ);
  t->result = mine;
}

int main(void) {
  for (int t = 0; t < THREADS; t++) {
    if (wt_spawn(&threads[t], stacks[t], run, (void *)(long)t) <= 0) {
      printf("spawn failed\n");
      return 1;
    }
  }
  int failed_threads = 0;
  for (int t = 0; t < THREADS; t++) failed_threads += wt_join(&threads[t]) != 0;
  printf("barrier: %d threads, %d phases (%d barrier generations), %d errors, %d threads "
         "saw errors, last phase %d\n",
         THREADS, PHASES, barrier.generation, errors, failed_threads, last_phase_seen);
  return errors != 0 || barrier.generation != 2 * PHASES;
}
