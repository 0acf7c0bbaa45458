// A C program built with -g whose trap must show its file and line in a
// backtrace (tests/all/traps.rs). Without libc, so its debug info stays small.
__attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_exit")))
void proc_exit(int code);

__attribute__((noinline)) int divide(int a, int b) {
    return a / b; // line 7: the trap
}

void _start(void) {
    volatile int zero = 0;
    proc_exit(divide(10, zero));
}
