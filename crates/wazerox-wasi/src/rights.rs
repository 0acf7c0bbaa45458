//! Preview1 rights (the `rights` flags of `typenames.witx`): what a descriptor may be
//! used for. A descriptor's base rights gate the calls on it; its inheriting rights
//! bound what descriptors opened through it may get. Rights only ever shrink.

/// The right to call `fd_datasync`.
pub const FD_DATASYNC: u64 = 1 << 0;
/// The right to call `fd_read` and `sock_recv`.
pub const FD_READ: u64 = 1 << 1;
/// The right to call `fd_seek` (implies `FD_TELL`).
pub const FD_SEEK: u64 = 1 << 2;
/// The right to call `fd_fdstat_set_flags`.
pub const FD_FDSTAT_SET_FLAGS: u64 = 1 << 3;
/// The right to call `fd_sync`.
pub const FD_SYNC: u64 = 1 << 4;
/// The right to call `fd_tell` (`fd_seek` to the current position).
pub const FD_TELL: u64 = 1 << 5;
/// The right to call `fd_write` and `sock_send`.
pub const FD_WRITE: u64 = 1 << 6;
/// The right to call `fd_advise`.
pub const FD_ADVISE: u64 = 1 << 7;
/// The right to call `fd_allocate`.
pub const FD_ALLOCATE: u64 = 1 << 8;
/// The right to call `path_create_directory`.
pub const PATH_CREATE_DIRECTORY: u64 = 1 << 9;
/// The right to call `path_open` with `O_CREAT`.
pub const PATH_CREATE_FILE: u64 = 1 << 10;
/// The right to call `path_link` with this directory as the source.
pub const PATH_LINK_SOURCE: u64 = 1 << 11;
/// The right to call `path_link` with this directory as the target.
pub const PATH_LINK_TARGET: u64 = 1 << 12;
/// The right to call `path_open`.
pub const PATH_OPEN: u64 = 1 << 13;
/// The right to call `fd_readdir`.
pub const FD_READDIR: u64 = 1 << 14;
/// The right to call `path_readlink`.
pub const PATH_READLINK: u64 = 1 << 15;
/// The right to call `path_rename` with this directory as the source.
pub const PATH_RENAME_SOURCE: u64 = 1 << 16;
/// The right to call `path_rename` with this directory as the target.
pub const PATH_RENAME_TARGET: u64 = 1 << 17;
/// The right to call `path_filestat_get`.
pub const PATH_FILESTAT_GET: u64 = 1 << 18;
/// The right to changing a file's size through a path (`path_open` with `O_TRUNC`).
pub const PATH_FILESTAT_SET_SIZE: u64 = 1 << 19;
/// The right to call `path_filestat_set_times`.
pub const PATH_FILESTAT_SET_TIMES: u64 = 1 << 20;
/// The right to call `fd_filestat_get`.
pub const FD_FILESTAT_GET: u64 = 1 << 21;
/// The right to call `fd_filestat_set_size`.
pub const FD_FILESTAT_SET_SIZE: u64 = 1 << 22;
/// The right to call `fd_filestat_set_times`.
pub const FD_FILESTAT_SET_TIMES: u64 = 1 << 23;
/// The right to call `path_symlink`.
pub const PATH_SYMLINK: u64 = 1 << 24;
/// The right to call `path_remove_directory`.
pub const PATH_REMOVE_DIRECTORY: u64 = 1 << 25;
/// The right to call `path_unlink_file`.
pub const PATH_UNLINK_FILE: u64 = 1 << 26;
/// The right to call `poll_oneoff` on the descriptor's readiness.
pub const POLL_FD_READWRITE: u64 = 1 << 27;
/// The right to call `sock_shutdown`.
pub const SOCK_SHUTDOWN: u64 = 1 << 28;
/// The right to call `sock_accept`.
pub const SOCK_ACCEPT: u64 = 1 << 29;

/// Every right preview1 defines.
pub const ALL: u64 = (1 << 30) - 1;

/// What a regular file can do.
pub const FILE: u64 = FD_DATASYNC
    | FD_READ
    | FD_SEEK
    | FD_FDSTAT_SET_FLAGS
    | FD_SYNC
    | FD_TELL
    | FD_WRITE
    | FD_ADVISE
    | FD_ALLOCATE
    | FD_FILESTAT_GET
    | FD_FILESTAT_SET_SIZE
    | FD_FILESTAT_SET_TIMES
    | POLL_FD_READWRITE;

/// What a directory can do.
pub const DIRECTORY: u64 = FD_DATASYNC
    | FD_FDSTAT_SET_FLAGS
    | FD_SYNC
    | PATH_CREATE_DIRECTORY
    | PATH_CREATE_FILE
    | PATH_LINK_SOURCE
    | PATH_LINK_TARGET
    | PATH_OPEN
    | FD_READDIR
    | PATH_READLINK
    | PATH_RENAME_SOURCE
    | PATH_RENAME_TARGET
    | PATH_FILESTAT_GET
    | PATH_FILESTAT_SET_SIZE
    | PATH_FILESTAT_SET_TIMES
    | FD_FILESTAT_GET
    | FD_FILESTAT_SET_TIMES
    | PATH_SYMLINK
    | PATH_REMOVE_DIRECTORY
    | PATH_UNLINK_FILE;

/// Standard input: readable, pollable, not seekable. No `FD_SEEK`/`FD_TELL` is what
/// makes wasi-libc's `isatty` true for a terminal.
pub const STDIN: u64 = FD_READ | FD_FDSTAT_SET_FLAGS | FD_FILESTAT_GET | POLL_FD_READWRITE;

/// Standard output and error.
pub const STDOUT: u64 =
    FD_WRITE | FD_DATASYNC | FD_SYNC | FD_FDSTAT_SET_FLAGS | FD_FILESTAT_GET | POLL_FD_READWRITE;

/// A connected stream socket.
pub const SOCKET: u64 =
    FD_READ | FD_WRITE | FD_FDSTAT_SET_FLAGS | FD_FILESTAT_GET | POLL_FD_READWRITE | SOCK_SHUTDOWN;

/// A listening socket.
pub const LISTENER: u64 = FD_FDSTAT_SET_FLAGS | FD_FILESTAT_GET | POLL_FD_READWRITE | SOCK_ACCEPT;

/// Rights whose presence in `path_open` means "open for reading" (wasi-libc and Rust's
/// std ask for exactly these for `O_RDONLY`/`read(true)`).
pub const READS: u64 = FD_READ | FD_READDIR;

/// Rights only a descriptor open for writing can use.
pub const WRITES: u64 = FD_WRITE | FD_DATASYNC | FD_ALLOCATE | FD_FILESTAT_SET_SIZE;

/// Rights whose presence in `path_open` means "open for writing". `fd_datasync` is
/// not one: a directory's rights include it (a directory can be synced), and opening
/// `"."` with exactly the rights its preopen reports must not ask for a writable
/// directory (the WASI testsuite's `path_open_preopen`).
pub const OPENS_FOR_WRITING: u64 = FD_WRITE | FD_ALLOCATE | FD_FILESTAT_SET_SIZE;
