/* Files and directories in a preopen (argv[1], default /sandbox, empty at start):
 * create/read/write, seek/tell, pread/pwrite, stat, truncate, times, append,
 * readdir across many entries (cookies), rename, unlink, rmdir, symlinks, hard
 * links, chdir, error codes, and escapes that must fail. */
#include "check.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char root[256];

static const char *at(const char *name) {
    static char buf[4][512];
    static int next;
    char *out = buf[next++ % 4];
    snprintf(out, 512, "%s/%s", root, name);
    return out;
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int read_file(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return (int)n;
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void files(void) {
    char buf[256];
    CHECK(write_file(at("hello.txt"), "hello world") == 0);
    CHECK(read_file(at("hello.txt"), buf, sizeof buf) == 11 && strcmp(buf, "hello world") == 0);

    int fd = open(at("hello.txt"), O_RDWR);
    CHECK(fd >= 0);
    CHECK(lseek(fd, 6, SEEK_SET) == 6);
    CHECK(read(fd, buf, 5) == 5 && memcmp(buf, "world", 5) == 0);
    CHECK(lseek(fd, 0, SEEK_CUR) == 11);
    CHECK(lseek(fd, -5, SEEK_END) == 6);
    CHECK_ERR(lseek(fd, -100, SEEK_CUR), EINVAL);
    CHECK(pwrite(fd, "HELLO", 5, 0) == 5);
    CHECK(pread(fd, buf, 5, 0) == 5 && memcmp(buf, "HELLO", 5) == 0);
    CHECK(lseek(fd, 0, SEEK_CUR) == 6); /* pread/pwrite leave the position */
    CHECK(fsync(fd) == 0 && fdatasync(fd) == 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 11);
    CHECK(ftruncate(fd, 3) == 0);
    CHECK(fstat(fd, &st) == 0 && st.st_size == 3);
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
    CHECK(close(fd) == 0);
    CHECK_ERR(close(fd), EBADF);

    fd = open(at("hello.txt"), O_RDONLY);
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY);
    CHECK_ERR(write(fd, "x", 1), EBADF);
    close(fd);
    fd = open(at("hello.txt"), O_WRONLY);
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY);
    CHECK_ERR(read(fd, buf, 1), EBADF);
    close(fd);

    fd = open(at("hello.txt"), O_WRONLY | O_APPEND);
    CHECK(write(fd, "-appended", 9) == 9);
    close(fd);
    CHECK(read_file(at("hello.txt"), buf, sizeof buf) == 12 && strcmp(buf, "HEL-appended") == 0);

    struct timespec times[2] = {{1000000000, 0}, {1234567890, 500}};
    CHECK(utimensat(AT_FDCWD, at("hello.txt"), times, 0) == 0);
    CHECK(stat(at("hello.txt"), &st) == 0 && st.st_mtim.tv_sec == 1234567890 &&
          st.st_mtim.tv_nsec == 500 && st.st_atim.tv_sec == 1000000000);

    CHECK_ERR(open(at("missing.txt"), O_RDONLY), ENOENT);
    CHECK_ERR(open(at("hello.txt"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
    CHECK_ERR(open(at("hello.txt/"), O_RDONLY), ENOTDIR);
    CHECK_ERR(open(at("hello.txt/x"), O_RDONLY), ENOTDIR);
    CHECK(access(at("hello.txt"), F_OK) == 0);
    CHECK_ERR(access(at("missing.txt"), F_OK), ENOENT);
}

static void directories(void) {
    char buf[256];
    struct stat st;
    CHECK(mkdir(at("dir"), 0755) == 0);
    CHECK_ERR(mkdir(at("dir"), 0755), EEXIST);
    CHECK(stat(at("dir"), &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(stat(at("dir/"), &st) == 0 && S_ISDIR(st.st_mode));
    CHECK_ERR(open(at("dir"), O_WRONLY), EISDIR);
    CHECK(write_file(at("dir/b"), "b") == 0);
    CHECK(write_file(at("dir/a"), "a") == 0);
    CHECK(mkdir(at("dir/sub"), 0755) == 0);

    DIR *d = opendir(at("dir"));
    CHECK(d != NULL);
    char *names[16];
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < 16) {
        names[n++] = strdup(e->d_name);
        if (strcmp(e->d_name, "sub") == 0) CHECK(e->d_type == DT_DIR);
        if (strcmp(e->d_name, "a") == 0) CHECK(e->d_type == DT_REG);
    }
    if (d) closedir(d);
    qsort(names, n, sizeof *names, cmp);
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        strcat(buf, names[i]);
        strcat(buf, " ");
        free(names[i]);
    }
    CHECK(strcmp(buf, ". .. a b sub ") == 0);

    CHECK_ERR(rmdir(at("dir")), ENOTEMPTY);
    CHECK_ERR(rmdir(at("dir/a")), ENOTDIR);
    CHECK_ERR(unlink(at("dir/sub")), EISDIR);
    CHECK(rename(at("dir/a"), at("dir/z")) == 0);
    CHECK_ERR(stat(at("dir/a"), &st), ENOENT);
    CHECK(read_file(at("dir/z"), buf, sizeof buf) == 1 && buf[0] == 'a');
    CHECK(rename(at("dir/z"), at("dir/b")) == 0); /* replaces */
    CHECK(read_file(at("dir/b"), buf, sizeof buf) == 1 && buf[0] == 'a');
    CHECK(rename(at("dir/sub"), at("moved")) == 0);
    CHECK(stat(at("moved"), &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(rmdir(at("moved/")) == 0);
    CHECK(unlink(at("dir/b")) == 0);
    CHECK_ERR(unlink(at("dir/b")), ENOENT);
    CHECK(rmdir(at("dir")) == 0);

    /* Many entries with long names: fd_readdir is called many times with cookies. */
    CHECK(mkdir(at("many"), 0755) == 0);
    char name[300];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "many/entry-%03d-%s", i,
                 "padding-padding-padding-padding-padding-padding-padding-padding");
        CHECK(write_file(at(name), "x") == 0);
    }
    d = opendir(at("many"));
    int count = 0, seen[300] = {0};
    while (d && (e = readdir(d)) != NULL) {
        int k;
        if (sscanf(e->d_name, "entry-%d-", &k) == 1 && k >= 0 && k < 300) seen[k]++;
        count++;
    }
    if (d) closedir(d);
    int all_once = 1;
    for (int i = 0; i < 300; i++) all_once &= seen[i] == 1;
    CHECK(count == 302 && all_once);
    /* seekdir/telldir use the cookies. */
    d = opendir(at("many"));
    for (int i = 0; i < 150 && d; i++) readdir(d);
    long cookie = d ? telldir(d) : 0;
    e = d ? readdir(d) : NULL;
    char first[300] = "";
    if (e) strcpy(first, e->d_name);
    for (int i = 0; i < 40 && d; i++) readdir(d);
    if (d) seekdir(d, cookie);
    e = d ? readdir(d) : NULL;
    CHECK(e != NULL && strcmp(e->d_name, first) == 0);
    if (d) closedir(d);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "many/entry-%03d-%s", i,
                 "padding-padding-padding-padding-padding-padding-padding-padding");
        unlink(at(name));
    }
    CHECK(rmdir(at("many")) == 0);

    /* chdir: relative paths resolve against the emulated working directory. */
    CHECK(mkdir(at("cwd"), 0755) == 0);
    CHECK(chdir(at("cwd")) == 0);
    CHECK(write_file("rel.txt", "relative") == 0);
    CHECK(read_file(at("cwd/rel.txt"), buf, sizeof buf) == 8);
    CHECK(getcwd(buf, sizeof buf) != NULL && strcmp(buf, at("cwd")) == 0);
    CHECK(unlink("rel.txt") == 0);
    CHECK(chdir(root) == 0);
    CHECK(rmdir("cwd") == 0);
}

static void links(void) {
    char buf[256];
    struct stat st;
    CHECK(write_file(at("target.txt"), "target") == 0);
    CHECK(symlink("target.txt", at("link")) == 0);
    CHECK(readlink(at("link"), buf, sizeof buf) == 10 && memcmp(buf, "target.txt", 10) == 0);
    CHECK(read_file(at("link"), buf, sizeof buf) == 6 && strcmp(buf, "target") == 0);
    CHECK(lstat(at("link"), &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(stat(at("link"), &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 6);
    CHECK_ERR(open(at("link"), O_RDONLY | O_NOFOLLOW), ELOOP);
    CHECK_ERR(readlink(at("target.txt"), buf, sizeof buf), EINVAL);

    CHECK(mkdir(at("d1"), 0755) == 0);
    CHECK(symlink("../target.txt", at("d1/up")) == 0);
    CHECK(read_file(at("d1/up"), buf, sizeof buf) == 6);
    CHECK(symlink("d1", at("dirlink")) == 0);
    CHECK(read_file(at("dirlink/up"), buf, sizeof buf) == 6);
    CHECK(stat(at("dirlink/"), &st) == 0 && S_ISDIR(st.st_mode));

    CHECK(symlink("nowhere.txt", at("dangling")) == 0);
    CHECK_ERR(open(at("dangling"), O_RDONLY), ENOENT);
    int fd = open(at("dangling"), O_WRONLY | O_CREAT, 0644); /* creates the target */
    CHECK(fd >= 0);
    close(fd);
    CHECK(stat(at("nowhere.txt"), &st) == 0);

    CHECK(symlink("loop2", at("loop1")) == 0);
    CHECK(symlink("loop1", at("loop2")) == 0);
    CHECK_ERR(open(at("loop1"), O_RDONLY), ELOOP);

    CHECK(link(at("target.txt"), at("hard.txt")) == 0);
    CHECK(stat(at("hard.txt"), &st) == 0 && st.st_nlink == 2);
    CHECK_ERR(link(at("target.txt"), at("hard.txt")), EEXIST);

    /* Links out of the sandbox cannot be planted, absolute or climbing out; a
       relative one that stays inside can. */
    errno = 0;
    CHECK(symlink("/etc/passwd", at("abs")) == -1 && errno != 0);
    errno = 0;
    CHECK(symlink("../../../../../../etc/passwd", at("climb")) == -1 && errno != 0);
    errno = 0;
    CHECK(symlink("../../target.txt", at("d1/climb")) == -1 && errno != 0);
    CHECK(symlink("../target.txt", at("d1/inside")) == 0);
    CHECK(stat(at("d1/inside"), &st) == 0);

    const char *names[] = {"link", "d1/up", "d1/inside", "dirlink", "dangling", "nowhere.txt",
                           "loop1", "loop2", "hard.txt", "target.txt"};
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++) CHECK(unlink(at(names[i])) == 0);
    CHECK(rmdir(at("d1")) == 0);
}

static void escapes(void) {
    char buf[64];
    const char *paths[] = {"..", "../x", "dir/../../x", "./../x"};
    for (unsigned i = 0; i < sizeof paths / sizeof *paths; i++) {
        errno = 0;
        int fd = open(at(paths[i]), O_RDONLY);
        CHECK(fd == -1 && errno != 0);
        if (fd >= 0) close(fd);
    }
    errno = 0;
    CHECK(open("/etc/passwd", O_RDONLY) == -1 && errno != 0);
    CHECK(read_file("/etc/hostname", buf, sizeof buf) == -1);
    errno = 0;
    CHECK(mkdir("/tmp/wazerox-escape", 0755) == -1 && errno != 0);
}

int main(int argc, char **argv) {
    snprintf(root, sizeof root, "%s", argc > 1 ? argv[1] : "/sandbox");
    files();
    directories();
    links();
    escapes();
    CHECK(unlink(at("hello.txt")) == 0);
    DIR *d = opendir(root);
    int left = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) left++;
    if (d) closedir(d);
    CHECK(left == 2); /* just . and .. */
    return report("fs");
}
