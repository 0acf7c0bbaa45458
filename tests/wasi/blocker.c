/* Blocks for the host to cancel: argv[1] is "read" (stdin), "sleep" (an hour),
 * "poll" (stdin or an hour) or "accept" (the socket at fd 3). Prints "blocking"
 * first. Never returns normally within the test's patience. */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "sleep";
    printf("blocking in %s\n", mode);
    fflush(stdout);
    if (strcmp(mode, "read") == 0) {
        char c;
        return (int)read(0, &c, 1) + 10;
    } else if (strcmp(mode, "poll") == 0) {
        struct pollfd fd = {0, POLLIN, 0};
        return poll(&fd, 1, 3600 * 1000) + 20;
    } else if (strcmp(mode, "accept") == 0) {
        return accept(3, NULL, NULL) + 30;
    }
    struct timespec hour = {3600, 0};
    return nanosleep(&hour, NULL) + 40;
}
