//! Integration tests live in `all/`, one file per feature; this library is empty.
