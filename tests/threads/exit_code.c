/* Ending a program from one thread while the others are parked in
   memory.atomic.wait32, spinning, or waiting for the main thread:
     exit_code         a spawned thread calls proc_exit(42)
     exit_code trap    a spawned thread traps
     exit_code main    the main thread calls exit(5)
     exit_code return  the main thread returns 0
   In every mode the run ends promptly with that status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wt.h"

#define PARKED 3
#define SPINNING 2

static char stacks[PARKED + SPINNING + 1][WT_STACK_SIZE] __attribute__((aligned(16)));
static wt_thread threads[PARKED + SPINNING + 1];
static int ready, never_set, spins;

static void park(wt_thread *t) {
  (void)t;
  __atomic_fetch_add(&ready, 1, SEQ);
  for (;;) futex_wait(&never_set, 0, -1);
}

static void spin(wt_thread *t) {
  (void)t;
  __atomic_fetch_add(&ready, 1, SEQ);
  for (;;) __atomic_fetch_add(&spins, 1, SEQ);
}

static void await_others(void) {
  for (int seen; (seen = __atomic_load_n(&ready, SEQ)) < PARKED + SPINNING;)
    futex_wait(&ready, seen, 1000000);
}

static void end_program(wt_thread *t) {
  await_others();
  if (t->arg) __builtin_trap();
  _Exit(42); /* proc_exit, without running the single-threaded libc's atexit */
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "exit";
  printf("exit_code: mode %s\n", mode);
  fflush(stdout);
  int n = 0;
  for (int i = 0; i < PARKED; i++, n++) wt_spawn(&threads[n], stacks[n], park, 0);
  for (int i = 0; i < SPINNING; i++, n++) wt_spawn(&threads[n], stacks[n], spin, 0);
  if (!strcmp(mode, "exit") || !strcmp(mode, "trap")) {
    wt_spawn(&threads[n], stacks[n], end_program, (void *)(long)!strcmp(mode, "trap"));
    for (;;) futex_wait(&never_set, 0, -1);
  }
  await_others();
  printf("exit_code: %d threads parked or spinning\n", PARKED + SPINNING);
  if (!strcmp(mode, "main")) exit(5);
  return 0;
}
