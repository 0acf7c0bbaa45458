#include <setjmp.h>
#include <stdio.h>

static jmp_buf env;
static int depth_reached;

static void dive(int n, int target) {
    volatile char pad[32];
    pad[0] = (char)n;
    depth_reached = n;
    if (n == target) longjmp(env, n * 10 + pad[0] % 3);
    dive(n + 1, target);
}

static int attempt(int target) {
    int r = setjmp(env);
    if (r == 0) {
        dive(0, target);
        return -1;
    }
    return r;
}

int main(void) {
    long sum = 0;
    for (int t = 0; t < 20; t++) {
        int r = attempt(t);
        printf("target %d -> %d (depth %d)\n", t, r, depth_reached);
        sum += r;
    }
    /* Nested setjmp: an inner buffer, then back to the outer one. */
    jmp_buf outer;
    volatile int stage = 0;
    if (setjmp(outer) == 0) {
        stage = 1;
        if (setjmp(env) == 0) {
            stage = 2;
            longjmp(env, 1);
        }
        stage = 3;
        longjmp(outer, 7);
    }
    printf("nested stage %d, sum %ld\n", stage, sum);
    for (int i = 0; i < 100000; i++) sum += attempt(i % 7);
    printf("loop sum %ld\n", sum);
    return 0;
}
