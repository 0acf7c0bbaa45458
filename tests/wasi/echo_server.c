/* Serves one connection on the first preopened socket: answers each line with the
 * line upper-cased, until the client closes its side. A non-blocking accept with
 * no client waiting must fail with EAGAIN first. Prints "ready" before blocking. */
#include "check.h"
#include <ctype.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    int listener = -1;
    for (int fd = 3; fd < 64 && listener < 0; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) listener = fd;
    }
    CHECK(listener >= 0);
    CHECK_ERR(accept(1, NULL, NULL), ENOTSOCK);
    int flags = fcntl(listener, F_GETFL);
    CHECK(fcntl(listener, F_SETFL, flags | O_NONBLOCK) == 0);
    CHECK_ERR(accept(listener, NULL, NULL), EAGAIN);
    CHECK(fcntl(listener, F_SETFL, flags) == 0);
    printf("ready\n");
    fflush(stdout);

    int conn = accept(listener, NULL, NULL);
    CHECK(conn >= 0);
    char buf[256];
    ssize_t n, total = 0;
    while ((n = recv(conn, buf, sizeof buf, 0)) > 0) {
        for (ssize_t i = 0; i < n; i++) buf[i] = toupper((unsigned char)buf[i]);
        CHECK(send(conn, buf, n, 0) == n);
        total += n;
    }
    CHECK(n == 0);
    CHECK(shutdown(conn, SHUT_RDWR) == 0);
    CHECK(close(conn) == 0);
    printf("echoed %zd bytes\n", total);
    return report("echo_server");
}
