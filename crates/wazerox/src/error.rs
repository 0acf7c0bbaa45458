//! The one error type of the public API, with the stage that produced it.
//!
//! Like `anyhow::Error` (which wasmtime uses), `Error` converts from every
//! `std::error::Error + Send + Sync + 'static`, so host functions use `?` on any
//! error; the price is that `Error` itself does not implement `std::error::Error`
//! (the two impls would overlap). It converts *into* `Box<dyn std::error::Error
//! + Send + Sync>` (and `anyhow::Error` with the `anyhow` feature), keeping its
//! chain. Each error of a chain is displayed once: `{}` shows the outermost,
//! `{:#}` the whole chain joined by ": ", and a trap is never also its own source.

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
    /// Every slot of one of the pooling allocator's pools (instances, memories,
    /// tables, fiber stacks) is in use: transient, unlike `Instantiation`; the
    /// call may succeed once stores are dropped.
    PoolExhausted,
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

/// Guest-supplied text (a name from the name section, an import's module or field,
/// a decoder message quoting the binary) made safe to print: control characters
/// (ESC, newline, …) and the Unicode bidirectional overrides are shown as `\u{..}`
/// escapes, and backslashes doubled so that an escape cannot be forged. A module
/// can then neither drive the user's terminal nor fake lines of a backtrace.
pub(crate) struct GuestText<'a>(pub &'a str);

impl fmt::Display for GuestText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let needs_escape = |c: char| {
            c.is_control()
                || c == '\\'
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        };
        let mut rest = self.0;
        while let Some(at) = rest.find(needs_escape) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().expect("found a char");
            match c {
                '\\' => f.write_str("\\\\")?,
                c => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// A frame of a Wasm backtrace: the innermost is where the trap happened, the
/// others are at a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameInfo {
    /// The module's name from its name section.
    pub module_name: Option<String>,
    /// The function's index in its module (imports counted).
    pub func_index: u32,
    /// The function's name from the name section.
    pub func_name: Option<String>,
    /// Offset of the Wasm instruction in the module binary, when known.
    pub module_offset: Option<usize>,
    /// Offset of the Wasm instruction from the start of its function's body.
    pub func_offset: Option<usize>,
    /// Source positions from the module's DWARF, innermost inlined frame first
    /// (empty unless backtrace details are on, see
    /// [`Config::wasm_backtrace_details`](crate::Config::wasm_backtrace_details)).
    pub symbols: Vec<FrameSymbol>,
}

/// A source position of a backtrace frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSymbol {
    /// The source file, as the DWARF names it.
    pub file: Option<String>,
    /// The line in that file (1-based).
    pub line: Option<u32>,
    /// The column in that line (1-based).
    pub column: Option<u32>,
}

impl fmt::Display for FrameInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let module = GuestText(self.module_name.as_deref().unwrap_or("<module>"));
        match &self.func_name {
            Some(name) => write!(f, "{module}!{}", GuestText(name))?,
            None => write!(f, "{module}!<wasm function {}>", self.func_index)?,
        }
        if let Some(offset) = self.module_offset {
            write!(f, " @ {offset:#x}")?;
        }
        for symbol in &self.symbols {
            // A file name comes from the module's DWARF: guest text too.
            write!(
                f,
                "\n        at {}",
                GuestText(symbol.file.as_deref().unwrap_or("<unknown>"))
            )?;
            if let Some(line) = symbol.line {
                write!(f, ":{line}")?;
                if let Some(column) = symbol.column {
                    write!(f, ":{column}")?;
                }
            }
        }
        Ok(())
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
    /// What trapped.
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

    /// Wraps any error, e.g. from a host function (`?` does the same). A [`Trap`]
    /// stays a trap (`ErrorKind::Trap`).
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::from_boxed(Box::new(error))
    }

    /// The `Interrupt` trap that code stopped at an epoch check raises, for host
    /// functions that notice the store's deadline themselves while they wait
    /// ([`InterruptHandle::deadline_reached`](crate::InterruptHandle::deadline_reached)).
    pub fn interrupt() -> Self {
        Error::from(Trap::new(TrapCode::Interrupt, Vec::new()))
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
        let error = match error.downcast::<ErrorBox>() {
            Ok(inner) => return inner.0,
            Err(other) => other,
        };
        let error = match error.downcast::<Trap>() {
            Ok(trap) => {
                return Error {
                    kind: ErrorKind::Trap,
                    inner: Inner::Trap(*trap),
                };
            }
            Err(other) => other,
        };
        match error.downcast::<WasmError>() {
            Ok(e) => {
                let kind = match e.kind {
                    WasmErrorKind::Decode => ErrorKind::Decode,
                    WasmErrorKind::Validation => ErrorKind::Validation,
                    WasmErrorKind::Unsupported => ErrorKind::Unsupported,
                };
                // Messages about a binary may quote its names (`duplicate export name`).
                Error {
                    kind,
                    inner: Inner::Message(GuestText(&e.to_string()).to_string()),
                }
            }
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

    /// The stage that produced the error (validation, linking, a trap...).
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The trap, when the error is one.
    pub fn as_trap(&self) -> Option<&Trap> {
        match &self.inner {
            Inner::Trap(t) => Some(t),
            _ => None,
        }
    }

    /// The first error of type `E` in the chain: the trap of a trap error, a
    /// host function's error (made by `?` or [`Error::new`]), or any of their
    /// sources.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        let mut next: Option<&(dyn std::error::Error + 'static)> = match &self.inner {
            Inner::Trap(t) => Some(t),
            Inner::Source(e) => Some(&**e),
            Inner::Message(_) | Inner::Restore(_) | Inner::Exception(_) => None,
        };
        while let Some(error) = next {
            if let Some(found) = error.downcast_ref::<E>() {
                return Some(found);
            }
            next = error.source();
        }
        None
    }

    /// The cause of this error (what `{:#}` prints after it), as
    /// `std::error::Error::source` would say.
    pub fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner {
            // Displayed as this error itself: its cause comes next.
            Inner::Source(e) => e.source(),
            Inner::Trap(_) | Inner::Message(_) | Inner::Restore(_) | Inner::Exception(_) => None,
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        Error::new(error)
    }
}

#[cfg(feature = "anyhow")]
impl Error {
    /// Converts an `anyhow::Error` (`anyhow` feature): a wazerox error or a
    /// [`Trap`] inside it comes back as itself, so a trap stays a trap.
    pub fn from_anyhow(error: anyhow::Error) -> Self {
        match error.downcast::<ErrorBox>() {
            Ok(inner) => inner.0,
            Err(error) => match error.downcast::<Trap>() {
                Ok(trap) => Error::from(trap),
                Err(error) => Error::from_boxed(error.into()),
            },
        }
    }
}

/// `?` from wazerox into `anyhow` (`anyhow` feature). The other direction is
/// [`Error::from_anyhow`]: a `From` impl would overlap the one for every
/// `std::error::Error`, which `anyhow::Error` may implement some day.
#[cfg(feature = "anyhow")]
impl From<Error> for anyhow::Error {
    fn from(error: Error) -> Self {
        anyhow::Error::new(ErrorBox(error))
    }
}

impl From<Error> for Box<dyn std::error::Error + Send + Sync + 'static> {
    fn from(error: Error) -> Self {
        error.into_boxed()
    }
}

impl From<Error> for Box<dyn std::error::Error + 'static> {
    fn from(error: Error) -> Self {
        error.into_boxed()
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

impl std::error::Error for ErrorBox {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Message(m) => f.write_str(m)?,
            Inner::Trap(t) => fmt::Display::fmt(t, f)?,
            Inner::Source(e) => write!(f, "{e}")?,
            Inner::Restore(_) => {
                f.write_str("snapshot restore request that no running activation took")?
            }
            Inner::Exception(_) => f.write_str("uncaught wasm exception")?,
        }
        if f.alternate() {
            let mut next = self.source();
            while let Some(cause) = next {
                write!(f, ": {cause}")?;
                next = cause.source();
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?}: {})", self.kind, self)
    }
}
