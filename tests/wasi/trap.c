/* Writes a line, then traps (unreachable) from a named function two calls deep. */
#include <stdio.h>

__attribute__((noinline)) static void crash_here(int depth) {
    if (depth == 0) __builtin_trap();
    crash_here(depth - 1);
    printf("unreachable\n");
}

int main(void) {
    printf("about to trap\n");
    fflush(stdout);
    crash_here(2);
    return 0;
}
