/* Prints its arguments and environment, copies standard input to standard output,
 * writes a line to standard error, and exits with the code in $EXIT_CODE (via
 * exit(), so atexit-style flushing runs) or returns 0 from main. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    for (char **e = environ; *e; e++) printf("env %s\n", *e);
    printf("isatty(1)=%d\n", isatty(1));
    char buf[4096];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        fwrite(buf, 1, n, stdout);
        total += n;
    }
    printf("stdin bytes=%zu\n", total);
    fprintf(stderr, "to stderr\n");
    const char *code = getenv("EXIT_CODE");
    if (code) exit(atoi(code));
    return 0;
}
