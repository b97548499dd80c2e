//! The one error type that tools return. Every error carries a stable code (shown to
//! the model as `CODE: message`) and a message that says what happened and what to do.

use std::fmt;

/// A tool-facing error: a stable code plus a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: &'static str,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Error::new(codes::BAD_REQUEST, message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Error::new(codes::TIMEOUT, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(codes::INTERNAL, message)
    }
    pub fn is(&self, code: &str) -> bool {
        self.code == code
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// Stable error codes. Models and people match on these strings.
pub mod codes {
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const TIMEOUT: &str = "TIMEOUT";
    pub const INTERNAL: &str = "INTERNAL";
    pub const CDP_ERROR: &str = "CDP_ERROR";
    pub const STALE_REF: &str = "STALE_REF";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const NOT_ACTIONABLE: &str = "NOT_ACTIONABLE";
    pub const NAVIGATION_FAILED: &str = "NAVIGATION_FAILED";
    pub const EVAL_ERROR: &str = "EVAL_ERROR";
    pub const NO_BROWSER: &str = "NO_BROWSER";
    pub const BROWSER_GONE: &str = "BROWSER_GONE";
    pub const NO_EXTENSION: &str = "NO_EXTENSION";
    pub const TAB_BUSY: &str = "TAB_BUSY";
    pub const TAB_CLOSED: &str = "TAB_CLOSED";
    pub const LOCK_LOST: &str = "LOCK_LOST";
    pub const NOT_HELD: &str = "NOT_HELD";
    pub const NOT_ATTACHABLE: &str = "NOT_ATTACHABLE";
    pub const CONSENT_DENIED: &str = "CONSENT_DENIED";
    pub const CONSENT_TIMEOUT: &str = "CONSENT_TIMEOUT";
    pub const TAKEN_BACK: &str = "TAKEN_BACK";
    pub const NO_TAB: &str = "NO_TAB";
    pub const NO_DIALOG: &str = "NO_DIALOG";
    pub const TOO_LARGE: &str = "TOO_LARGE";
    /// A navigation to a page no client may open (browser or extension pages).
    pub const FORBIDDEN_URL: &str = "FORBIDDEN_URL";
    /// The tab shows a page no client may control; the extension detached from it.
    pub const FORBIDDEN_PAGE: &str = "FORBIDDEN_PAGE";
    /// A CDP command the extension does not relay.
    pub const FORBIDDEN_METHOD: &str = "FORBIDDEN_METHOD";
    /// A file outside the client's MCP roots.
    pub const FILE_OUTSIDE_ROOTS: &str = "FILE_OUTSIDE_ROOTS";
    /// A file that would be overwritten (or written through a symlink).
    pub const FILE_EXISTS: &str = "FILE_EXISTS";
}
