/* A read-only preopen /ro holding data.txt ("read only\n") and an empty dir sub:
 * reading works, every change fails with EROFS and leaves nothing behind. */
#include "check.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    char buf[64];
    int fd = open("/ro/data.txt", O_RDONLY);
    CHECK(fd >= 0);
    CHECK(read(fd, buf, sizeof buf) == 10 && memcmp(buf, "read only\n", 10) == 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == 10);
    CHECK_ERR(write(fd, "x", 1), EBADF);
    struct timespec times[2] = {{1, 0}, {1, 0}};
    CHECK_ERR(futimens(fd, times), EROFS);
    close(fd);
    DIR *d = opendir("/ro");
    int entries = 0;
    while (d && readdir(d)) entries++;
    if (d) closedir(d);
    CHECK(entries == 4);

    CHECK_ERR(open("/ro/data.txt", O_WRONLY), EROFS);
    CHECK_ERR(open("/ro/data.txt", O_RDWR), EROFS);
    CHECK_ERR(open("/ro/data.txt", O_RDONLY | O_TRUNC), EROFS);
    CHECK_ERR(open("/ro/new.txt", O_WRONLY | O_CREAT, 0644), EROFS);
    CHECK_ERR(mkdir("/ro/newdir", 0755), EROFS);
    CHECK_ERR(unlink("/ro/data.txt"), EROFS);
    CHECK_ERR(rmdir("/ro/sub"), EROFS);
    CHECK_ERR(rename("/ro/data.txt", "/ro/moved.txt"), EROFS);
    CHECK_ERR(symlink("data.txt", "/ro/link"), EROFS);
    CHECK_ERR(link("/ro/data.txt", "/ro/hard"), EROFS);
    CHECK_ERR(utimensat(AT_FDCWD, "/ro/data.txt", times, 0), EROFS);
    /* Subdirectories opened under it are read-only too. */
    CHECK_ERR(open("/ro/sub/new.txt", O_WRONLY | O_CREAT, 0644), EROFS);
    CHECK(stat("/ro/data.txt", &st) == 0 && st.st_size == 10);
    return report("readonly");
}
