//! The one error type of the public API, with the stage that produced it.

use std::fmt;
use wazerox_environ::{TrapCode, WasmError, WasmErrorKind};

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The bytes are not a well-formed module (binary or text).
    Decode,
    /// The module is well-formed but invalid.
    Validation,
    /// The module uses a feature wazerox does not implement or has disabled.
    Unsupported,
    /// Imports could not be satisfied (missing or incompatible).
    Link,
    /// Instantiation failed for a reason other than a trap (e.g. resources).
    Instantiation,
    /// Wasm code trapped (see [`Error::as_trap`]).
    Trap,
    /// A host function returned an error.
    Host,
    /// Wrong use of the API (types, arity, foreign store, …).
    Usage,
    /// A snapshot restore request that no running activation took: its call into
    /// Wasm ended, or every host function on the way swallowed it.
    Restore,
    /// A Wasm exception that no handler caught (see [`Error::as_exception`]); a
    /// host function returning one throws it into its Wasm caller.
    Exception,
}

/// A frame of a Wasm backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameInfo {
    pub module_name: Option<String>,
    pub func_index: u32,
    pub func_name: Option<String>,
    /// Offset of the instruction within the function's machine code.
    pub func_offset: u32,
}

impl fmt::Display for FrameInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let module = self.module_name.as_deref().unwrap_or("<module>");
        match &self.func_name {
            Some(name) => write!(f, "{module}!{name}"),
            None => write!(f, "{module}!<wasm function {}>", self.func_index),
        }
    }
}

/// Wasm execution trapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trap {
    code: TrapCode,
    backtrace: Vec<FrameInfo>,
}

impl Trap {
    pub(crate) fn new(code: TrapCode, backtrace: Vec<FrameInfo>) -> Self {
        Trap { code, backtrace }
    }
    pub fn code(&self) -> TrapCode {
        self.code
    }
    /// Innermost frame first.
    pub fn backtrace(&self) -> &[FrameInfo] {
        &self.backtrace
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wasm trap: {}", self.code)?;
        if !self.backtrace.is_empty() {
            write!(f, "\nwasm backtrace:")?;
            for (i, frame) in self.backtrace.iter().enumerate() {
                write!(f, "\n  {i:>2}: {frame}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Trap {}

enum Inner {
    Message(String),
    Trap(Trap),
    Source(Box<dyn std::error::Error + Send + Sync>),
    Restore(Box<crate::checkpoint::RestoreRequest>),
    Exception(crate::ExnRef),
}

/// An error from any part of wazerox. Host functions return it too.
pub struct Error {
    kind: ErrorKind,
    inner: Inner,
}

impl Error {
    /// An error with a message, e.g. from a host function.
    pub fn msg(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Host,
            inner: Inner::Message(message.into()),
        }
    }

    /// Wraps any error, e.g. from a host function.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error {
            kind: ErrorKind::Host,
            inner: Inner::Source(Box::new(error)),
        }
    }

    pub(crate) fn with_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            inner: Inner::Message(message.into()),
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Usage, message)
    }

    pub(crate) fn link(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::Link, message)
    }

    pub(crate) fn from_boxed(error: Box<dyn std::error::Error + Send + Sync>) -> Self {
        match error.downcast::<ErrorBox>() {
            Ok(inner) => inner.0,
            Err(other) => Error {
                kind: ErrorKind::Host,
                inner: Inner::Source(other),
            },
        }
    }

    /// Boxes this error so it can travel through the runtime (which knows only
    /// `std::error::Error`) and come back as itself.
    pub(crate) fn into_boxed(self) -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(ErrorBox(self))
    }

    pub(crate) fn from_restore(
        kind: ErrorKind,
        request: Box<crate::checkpoint::RestoreRequest>,
    ) -> Self {
        Error {
            kind,
            inner: Inner::Restore(request),
        }
    }

    pub(crate) fn into_restore_request(self) -> Result<crate::checkpoint::RestoreRequest, Error> {
        match self.inner {
            Inner::Restore(request) => Ok(*request),
            inner => Err(Error {
                kind: self.kind,
                inner,
            }),
        }
    }

    /// An error that throws `exception`: returned by a host function, it is
    /// thrown into the calling Wasm code, where a handler may catch it.
    pub fn throw(exception: crate::ExnRef) -> Self {
        Error {
            kind: ErrorKind::Exception,
            inner: Inner::Exception(exception),
        }
    }

    /// The uncaught exception this error carries.
    pub fn as_exception(&self) -> Option<&crate::ExnRef> {
        match &self.inner {
            Inner::Exception(e) => Some(e),
            _ => None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn as_trap(&self) -> Option<&Trap> {
        match &self.inner {
            Inner::Trap(t) => Some(t),
            _ => None,
        }
    }

    /// The wrapped error of a host function, if it returned one made by [`Error::new`].
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match &self.inner {
            Inner::Source(e) => e.downcast_ref::<E>(),
            _ => None,
        }
    }
}

/// Carries an [`Error`] through the runtime's `Box<dyn Error>` channel unchanged.
#[derive(Debug)]
struct ErrorBox(Error);

impl fmt::Display for ErrorBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for ErrorBox {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Message(m) => f.write_str(m),
            Inner::Trap(t) => fmt::Display::fmt(t, f),
            Inner::Source(e) => fmt::Display::fmt(e, f),
            Inner::Restore(_) => {
                f.write_str("snapshot restore request that no running activation took")
            }
            Inner::Exception(_) => f.write_str("uncaught wasm exception"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?}: {})", self.kind, self)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner {
            Inner::Source(e) => Some(&**e),
            Inner::Trap(t) => Some(t),
            Inner::Message(_) | Inner::Restore(_) | Inner::Exception(_) => None,
        }
    }
}

impl From<Trap> for Error {
    fn from(trap: Trap) -> Self {
        Error {
            kind: ErrorKind::Trap,
            inner: Inner::Trap(trap),
        }
    }
}

impl From<WasmError> for Error {
    fn from(e: WasmError) -> Self {
        let kind = match e.kind {
            WasmErrorKind::Decode => ErrorKind::Decode,
            WasmErrorKind::Validation => ErrorKind::Validation,
            WasmErrorKind::Unsupported => ErrorKind::Unsupported,
        };
        Error {
            kind,
            inner: Inner::Message(e.to_string()),
        }
    }
}
