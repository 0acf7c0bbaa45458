/* Clocks, sleeping, poll_oneoff with clocks and descriptors, randomness,
 * sched_yield. Standard input must hold some bytes (readiness is checked). */
#include "check.h"
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

static int64_t ns(clockid_t clock) {
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0) return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(void) {
    struct timespec res;
    CHECK(clock_getres(CLOCK_REALTIME, &res) == 0 && res.tv_sec == 0 && res.tv_nsec > 0);
    CHECK(clock_getres(CLOCK_MONOTONIC, &res) == 0 && res.tv_nsec > 0);
    CHECK(ns(CLOCK_REALTIME) > (int64_t)1700000000 * 1000000000);  /* after 2023 */
    CHECK(time(NULL) > 1700000000);

    int64_t a = ns(CLOCK_MONOTONIC), b = ns(CLOCK_MONOTONIC);
    CHECK(a > 0 && b >= a);

    /* wasi-libc has no CPU-time clocks in <time.h>: ask WASI directly. */
    __wasi_timestamp_t cpu0, thread0, cpu1, thread1, cpu_res;
    CHECK(__wasi_clock_time_get(__WASI_CLOCKID_PROCESS_CPUTIME_ID, 1, &cpu0) == 0);
    CHECK(__wasi_clock_time_get(__WASI_CLOCKID_THREAD_CPUTIME_ID, 1, &thread0) == 0);
    CHECK(__wasi_clock_res_get(__WASI_CLOCKID_PROCESS_CPUTIME_ID, &cpu_res) == 0 && cpu_res > 0);
    volatile uint64_t x = 0;
    for (uint64_t i = 0; i < 20000000; i++) x += i * i;
    CHECK(__wasi_clock_time_get(__WASI_CLOCKID_PROCESS_CPUTIME_ID, 1, &cpu1) == 0 && cpu1 > cpu0);
    CHECK(__wasi_clock_time_get(__WASI_CLOCKID_THREAD_CPUTIME_ID, 1, &thread1) == 0 &&
          thread1 > thread0);
    __wasi_timestamp_t t;
    CHECK(__wasi_clock_time_get(9, 1, &t) == __WASI_ERRNO_INVAL);

    /* Relative sleep (poll_oneoff with one relative clock subscription). */
    int64_t t0 = ns(CLOCK_MONOTONIC);
    struct timespec nap = {0, 30 * 1000000};
    CHECK(nanosleep(&nap, NULL) == 0);
    int64_t slept = ns(CLOCK_MONOTONIC) - t0;
    CHECK(slept >= 30 * 1000000 && slept < 2000000000);

    /* Absolute sleep on the monotonic and realtime clocks. */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += 20 * 1000000;
    if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == 0);
    CHECK(ns(CLOCK_MONOTONIC) >= (int64_t)until.tv_sec * 1000000000 + until.tv_nsec);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 20 * 1000000;
    if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
    CHECK(clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &until, NULL) == 0);
    CHECK(ns(CLOCK_REALTIME) >= (int64_t)until.tv_sec * 1000000000 + until.tv_nsec);
    CHECK(usleep(1000) == 0);

    /* poll: a timeout alone waits for it ... */
    t0 = ns(CLOCK_MONOTONIC);
    CHECK(poll(NULL, 0, 25) == 0);
    CHECK(ns(CLOCK_MONOTONIC) - t0 >= 25 * 1000000);
    /* ... a ready descriptor returns at once, with the clock in the same call. */
    struct pollfd fds[2] = {{0, POLLIN, 0}, {1, POLLOUT, 0}};
    t0 = ns(CLOCK_MONOTONIC);
    int ready = poll(fds, 2, 5000);
    CHECK(ready == 2 && (fds[0].revents & POLLIN) && (fds[1].revents & POLLOUT));
    CHECK(ns(CLOCK_MONOTONIC) - t0 < 1000000000);
    char line[64];
    CHECK(read(0, line, sizeof line) > 0);
    /* A bad descriptor is reported, not waited for. */
    struct pollfd bad = {77, POLLIN, 0};
    CHECK(poll(&bad, 1, 5000) == 1 && (bad.revents & POLLNVAL));

    /* Randomness: two draws differ; every byte value shows up in 64 KiB. */
    unsigned char r1[32], r2[32];
    CHECK(getentropy(r1, sizeof r1) == 0 && getentropy(r2, sizeof r2) == 0);
    CHECK(memcmp(r1, r2, sizeof r1) != 0);
    static unsigned char big[65536];
    arc4random_buf(big, sizeof big);
    int seen[256] = {0}, distinct = 0;
    for (unsigned i = 0; i < sizeof big; i++) seen[big[i]] = 1;
    for (int i = 0; i < 256; i++) distinct += seen[i];
    CHECK(distinct == 256);

    CHECK(sched_yield() == 0);
    return report("clocks");
}
