/* Self-checking test programs: every CHECK counts; a failure prints its line and
 * errno, and report() prints the totals and gives the exit status. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int checks, failures;

#define CHECK(cond)                                                              \
    do {                                                                         \
        checks++;                                                                \
        if (!(cond)) {                                                           \
            failures++;                                                          \
            printf("FAIL %s:%d: %s (errno %d: %s)\n", __FILE__, __LINE__, #cond, \
                   errno, strerror(errno));                                      \
        }                                                                        \
    } while (0)

/* `expr` must fail with -1 and errno `code`. */
#define CHECK_ERR(expr, code)                                                    \
    do {                                                                         \
        errno = 0;                                                               \
        long r_ = (long)(expr);                                                  \
        checks++;                                                                \
        if (r_ != -1 || errno != (code)) {                                       \
            failures++;                                                          \
            printf("FAIL %s:%d: %s = %ld, errno %d (%s); want -1, errno %d (%s)\n", \
                   __FILE__, __LINE__, #expr, r_, errno, strerror(errno), (code), \
                   strerror(code));                                              \
        }                                                                        \
    } while (0)

static int report(const char *name) {
    printf("%s: %d checks, %d failed\n", name, checks, failures);
    return failures ? 1 : 0;
}
