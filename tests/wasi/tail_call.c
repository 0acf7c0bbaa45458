/* Built with LLVM's -mtail-call: `musttail` returns become `return_call` and
 * `return_call_indirect`, so a threaded interpreter and mutual recursion 10^7 deep
 * run in constant stack (wazerox's default stack is 512 KiB). */
#include "check.h"
#include <stdint.h>

/* Mutual recursion through direct tail calls. */
__attribute__((noinline)) static int is_odd(uint32_t n);
__attribute__((noinline)) static int is_even(uint32_t n) {
    if (n == 0) return 1;
    __attribute__((musttail)) return is_odd(n - 1);
}
__attribute__((noinline)) static int is_odd(uint32_t n) {
    if (n == 0) return 0;
    __attribute__((musttail)) return is_even(n - 1);
}

/* A threaded interpreter: every handler tail-calls the next one through a table
 * (`return_call_indirect`). Program: acc += 3; acc ^= pc; loop `count` times. */
enum { OP_ADD, OP_XOR, OP_LOOP, OP_HALT };
typedef struct { uint8_t op; } insn;
typedef uint64_t (*handler)(const insn *pc, uint64_t acc, uint64_t count, int base);

static uint64_t op_add(const insn *, uint64_t, uint64_t, int);
static uint64_t op_xor(const insn *, uint64_t, uint64_t, int);
static uint64_t op_loop(const insn *, uint64_t, uint64_t, int);
static uint64_t op_halt(const insn *, uint64_t, uint64_t, int);
static handler volatile table[] = {op_add, op_xor, op_loop, op_halt};

#define DISPATCH(pc, acc, count, base) \
    __attribute__((musttail)) return table[(pc)->op](pc, acc, count, base)

__attribute__((noinline)) static uint64_t op_add(const insn *pc, uint64_t acc, uint64_t count, int base) {
    DISPATCH(pc + 1, acc + 3, count, base);
}
__attribute__((noinline)) static uint64_t op_xor(const insn *pc, uint64_t acc, uint64_t count, int base) {
    DISPATCH(pc + 1, acc ^ (uint64_t)(pc - (const insn *)0) ^ (uint64_t)base, count, base);
}
__attribute__((noinline)) static uint64_t op_loop(const insn *pc, uint64_t acc, uint64_t count, int base) {
    if (count > 1) DISPATCH(pc - 2, acc, count - 1, base);
    DISPATCH(pc + 1, acc, count, base);
}
__attribute__((noinline)) static uint64_t op_halt(const insn *pc, uint64_t acc, uint64_t count, int base) {
    (void)pc; (void)count; (void)base;
    return acc;
}

static const insn program[] = {{OP_ADD}, {OP_XOR}, {OP_LOOP}, {OP_HALT}};

/* The same computation as a plain loop, to check the interpreter against. */
static uint64_t expected(uint64_t count) {
    uint64_t acc = 0;
    for (uint64_t i = 0; i < count; i++) {
        acc += 3;
        acc ^= (uint64_t)(&program[1] - (const insn *)0) ^ 7u;
    }
    return acc;
}

int main(void) {
    CHECK(is_even(0) == 1);
    CHECK(is_even(7) == 0);
    CHECK(is_even(10000000) == 1);
    CHECK(is_odd(10000001) == 1);
    CHECK(table[program[0].op](program, 0, 1, 7) == expected(1));
    CHECK(table[program[0].op](program, 0, 5000000, 7) == expected(5000000));
    return report("tail_call");
}
