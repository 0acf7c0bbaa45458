/* WASIX calls from C (tests/wasix/build.sh; run by tests/all/wasix.rs and the CLI
 * test). Zig's wasi-libc knows nothing of WASIX, so the `wasix_32v1` functions are
 * imported here directly, with the signatures of wasix-libc's api_wasix.h. Needs a
 * preopen at /sandbox. Prints `wasix: N checks, 0 failed`. */
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../wasi/check.h"

#define WASIX(name) __attribute__((import_module("wasix_32v1"), import_name(#name)))
#define SEQ __ATOMIC_SEQ_CST

typedef struct {
    uint8_t tag; /* 0 none, 1 some */
    uint64_t nanos;
} option_timestamp;

typedef struct { /* WASIX thread_start, wasm32: 64 bytes */
    uint32_t stack_upper, tls_base, start_funct, start_args;
    uint32_t reserved[10];
    uint32_t stack_size, guard_size;
} thread_start;

WASIX(futex_wait) int futex_wait(uint32_t *, uint32_t, const option_timestamp *, uint8_t *);
WASIX(futex_wake) int futex_wake(uint32_t *, uint8_t *);
WASIX(futex_wake_all) int futex_wake_all(uint32_t *, uint8_t *);
WASIX(thread_spawn_v2) int thread_spawn_v2(thread_start *, uint32_t *);
WASIX(thread_id) int thread_id(uint32_t *);
WASIX(thread_join) int thread_join(uint32_t);
WASIX(thread_exit) _Noreturn void thread_exit(uint32_t);
WASIX(thread_sleep) int thread_sleep(uint64_t);
WASIX(thread_parallelism) int thread_parallelism(uint32_t *);
WASIX(thread_signal) int thread_signal(uint32_t, uint32_t);
WASIX(callback_signal) void callback_signal(const char *, uint32_t);
WASIX(fd_dup) int fd_dup(uint32_t, uint32_t *);
WASIX(fd_dup2) int fd_dup2(uint32_t, uint32_t, uint8_t, uint32_t *);
WASIX(fd_pipe) int fd_pipe(uint32_t *, uint32_t *);
WASIX(getcwd) int wasix_getcwd(char *, uint32_t *);
WASIX(chdir) int wasix_chdir(const char *, uint32_t);
WASIX(proc_id) int proc_id(uint32_t *);
WASIX(proc_parent) int proc_parent(uint32_t, uint32_t *);

enum { SIGUSR1 = 10, SIGUSR2 = 12 };

/* --- threads: each runs `body(arg)` on its own stack ---------------------- */

#define STACK 65536
#define THREADS 4

typedef struct {
    thread_start start; /* first: wasi_thread_start reads start.stack_upper */
    void (*body)(void *);
    void *arg;
    uint32_t tid_seen;
} thread;

static char stacks[THREADS + 2][STACK] __attribute__((aligned(16)));

/* Called by wasi_thread_start (wasix_start.s) on the thread's stack. */
void wasix_thread_main(int tid, thread *t) {
    thread_id(&t->tid_seen);
    (void)tid;
    t->body(t->arg);
}

static int spawn(thread *t, int slot, void (*body)(void *), void *arg, uint32_t *tid) {
    memset(t, 0, sizeof *t);
    t->start.stack_upper = (uint32_t)(uintptr_t)(stacks[slot] + STACK);
    t->start.stack_size = STACK;
    t->body = body;
    t->arg = arg;
    return thread_spawn_v2(&t->start, tid);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- futexes ---------------------------------------------------------------- */

static uint32_t word, word2, parked, woke_by_futex, woke_by_atomic;

static void futex_waiter(void *arg) {
    (void)arg;
    uint8_t woken = 0;
    option_timestamp forever = {0, 0};
    __atomic_add_fetch(&parked, 1, SEQ);
    while (__atomic_load_n(&word, SEQ) == 0) futex_wait(&word, 0, &forever, &woken);
    __atomic_add_fetch(&woke_by_futex, 1, SEQ);
}

static void atomic_waiter(void *arg) {
    (void)arg;
    __atomic_add_fetch(&parked, 1, SEQ);
    while (__atomic_load_n(&word2, SEQ) == 0)
        __builtin_wasm_memory_atomic_wait32((int *)&word2, 0, -1);
    __atomic_add_fetch(&woke_by_atomic, 1, SEQ);
}

static void test_futex(void) {
    thread t[3];
    uint32_t tid[3];
    CHECK(spawn(&t[0], 0, futex_waiter, 0, &tid[0]) == 0);
    CHECK(spawn(&t[1], 1, futex_waiter, 0, &tid[1]) == 0);
    CHECK(spawn(&t[2], 2, atomic_waiter, 0, &tid[2]) == 0);
    while (__atomic_load_n(&parked, SEQ) < 3) thread_sleep(1000000);
    thread_sleep(5000000);
    /* Both futex waiters: futex_wake_all, plus the Wasm notify for the other. */
    __atomic_store_n(&word, 1, SEQ);
    uint8_t woken = 0;
    CHECK(futex_wake_all(&word, &woken) == 0);
    __atomic_store_n(&word2, 1, SEQ);
    CHECK(futex_wake(&word2, &woken) == 0);
    for (int i = 0; i < 3; i++) CHECK(thread_join(tid[i]) == 0);
    CHECK(woke_by_futex == 2 && woke_by_atomic == 1);

    /* A timed wait times out, and says so. */
    uint32_t idle = 0;
    option_timestamp ten_ms = {1, 10000000};
    woken = 9;
    uint64_t start = now_ns();
    CHECK(futex_wait(&idle, 0, &ten_ms, &woken) == 0);
    CHECK(woken == 0 && now_ns() - start >= 10000000);
    /* A misaligned futex is EINVAL. */
    CHECK(futex_wait((uint32_t *)((char *)&idle + 1), 0, &ten_ms, &woken) == EINVAL);
}

/* --- threads ---------------------------------------------------------------- */

static uint32_t counter, after_exit;

static void count(void *arg) {
    for (int i = 0; i < 10000; i++) __atomic_add_fetch(&counter, 1, SEQ);
    if (arg) {
        thread_exit(7);
        after_exit = 1;
    }
}

static void test_threads(void) {
    thread t[THREADS];
    uint32_t tid[THREADS], me = 0, cores = 0;
    CHECK(thread_id(&me) == 0 && me == 1);
    CHECK(thread_parallelism(&cores) == 0 && cores >= 1);
    for (int i = 0; i < THREADS; i++)
        CHECK(spawn(&t[i], i, count, i == 0 ? (void *)1 : 0, &tid[i]) == 0);
    for (int i = 0; i < THREADS; i++) {
        CHECK(thread_join(tid[i]) == 0);
        CHECK(t[i].tid_seen == tid[i] && tid[i] > 1);
    }
    CHECK(counter == THREADS * 10000);
    CHECK(after_exit == 0);
    CHECK(thread_join(me) == EDEADLK);
}

/* --- signals -------------------------------------------------------------- */

static uint32_t signals_seen, last_signal, signal_thread;

__attribute__((export_name("wasix_signal"))) void wasix_signal(int sig) {
    thread_id(&signal_thread);
    __atomic_store_n(&last_signal, (uint32_t)sig, SEQ);
    __atomic_add_fetch(&signals_seen, 1, SEQ);
}

static void wait_for_signal(void *arg) {
    (void)arg;
    while (__atomic_load_n(&signals_seen, SEQ) < 2) thread_sleep(1000000);
}

static void test_signals(void) {
    static const char name[] = "wasix_signal";
    callback_signal(name, sizeof name - 1);
    CHECK(thread_signal(1, SIGUSR1) == 0);
    CHECK(signals_seen == 1 && last_signal == SIGUSR1 && signal_thread == 1);
    thread t;
    uint32_t tid;
    CHECK(spawn(&t, 0, wait_for_signal, 0, &tid) == 0);
    CHECK(thread_signal(tid, SIGUSR2) == 0);
    CHECK(thread_join(tid) == 0);
    CHECK(signals_seen == 2 && last_signal == SIGUSR2 && signal_thread == tid);
    CHECK(thread_signal(tid, SIGUSR2) == ESRCH);
}

/* --- descriptors -------------------------------------------------------------- */

static void test_descriptors(void) {
    int fd = open("/sandbox/dup.txt", O_CREAT | O_TRUNC | O_RDWR, 0644);
    CHECK(fd >= 0);
    uint32_t copy = 0, high = 0;
    CHECK(fd_dup(fd, &copy) == 0 && copy != (uint32_t)fd);
    CHECK(write(fd, "abc", 3) == 3);
    CHECK(write(copy, "def", 3) == 3); /* at the shared offset: after "abc" */
    CHECK(lseek(copy, 0, SEEK_CUR) == 6 && lseek(fd, 0, SEEK_CUR) == 6);
    CHECK(lseek(fd, 1, SEEK_SET) == 1 && lseek(copy, 0, SEEK_CUR) == 1);
    CHECK(close(fd) == 0);
    char buf[8] = {0};
    CHECK(read(copy, buf, sizeof buf) == 5 && memcmp(buf, "bcdef", 5) == 0);
    CHECK(fd_dup2(copy, 20, 0, &high) == 0 && high == 20);
    CHECK(close(high) == 0 && close(copy) == 0);
    CHECK(fd_dup(99, &copy) == EBADF);

    uint32_t rd = 0, wr = 0;
    CHECK(fd_pipe(&rd, &wr) == 0);
    CHECK(write(wr, "through the pipe", 16) == 16);
    memset(buf, 0, sizeof buf);
    CHECK(read(rd, buf, 7) == 7 && memcmp(buf, "through", 7) == 0);
    CHECK(close(wr) == 0);
    char rest[16];
    CHECK(read(rd, rest, sizeof rest) == 9 && read(rd, rest, sizeof rest) == 0);
    CHECK(close(rd) == 0);
}

/* --- working directory and process ids -------------------------------------- */

static void test_process(void) {
    char cwd[64];
    uint32_t len = sizeof cwd;
    CHECK(wasix_getcwd(cwd, &len) == 0 && strcmp(cwd, "/") == 0 && len == 1);
    CHECK(mkdir("/sandbox/sub", 0755) == 0);
    CHECK(wasix_chdir("/sandbox/sub", 12) == 0);
    len = sizeof cwd;
    CHECK(wasix_getcwd(cwd, &len) == 0 && strcmp(cwd, "/sandbox/sub") == 0);
    CHECK(wasix_chdir("..", 2) == 0);
    len = sizeof cwd;
    CHECK(wasix_getcwd(cwd, &len) == 0 && strcmp(cwd, "/sandbox") == 0);
    CHECK(wasix_chdir("missing", 7) == ENOENT);
    len = 4;
    CHECK(wasix_getcwd(cwd, &len) == ERANGE && len == 8);

    uint32_t pid = 0, parent = 99;
    CHECK(proc_id(&pid) == 0 && pid > 0);
    CHECK(proc_parent(pid, &parent) == 0 && parent == 0);
    CHECK(proc_parent(pid + 1, &parent) == ESRCH);
}

int main(void) {
    test_futex();
    test_threads();
    test_signals();
    test_descriptors();
    test_process();
    return report("wasix");
}
