//! The wire error: a stable code, a message for people, optional data.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The stable error codes of the wire protocol (`docs/PROTOCOL.md`).
pub mod codes {
    /// Malformed frame, unknown method, missing or wrong parameter.
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    /// The peer speaks another protocol version.
    pub const PROTOCOL_MISMATCH: &str = "PROTOCOL_MISMATCH";
    /// The tab is held by another instance and the wait timed out.
    pub const TAB_BUSY: &str = "TAB_BUSY";
    /// The tab is gone.
    pub const TAB_CLOSED: &str = "TAB_CLOSED";
    /// `tabs.claim` of a tab that does not exist.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// The caller held the tab but lost it.
    pub const LOCK_LOST: &str = "LOCK_LOST";
    /// The caller does not hold this tab.
    pub const NOT_HELD: &str = "NOT_HELD";
    /// The browser does not let extensions debug this tab.
    pub const NOT_ATTACHABLE: &str = "NOT_ATTACHABLE";
    /// The user said no to this instance using one of their tabs (or its policy is `deny`).
    pub const CONSENT_DENIED: &str = "CONSENT_DENIED";
    /// Nobody answered the question about one of the user's tabs within the claim's timeout.
    pub const CONSENT_TIMEOUT: &str = "CONSENT_TIMEOUT";
    /// The user took the tab back from its holder.
    pub const TAKEN_BACK: &str = "TAKEN_BACK";
    /// The tab shows a page no client may control (the extension detached from it).
    pub const FORBIDDEN_PAGE: &str = "FORBIDDEN_PAGE";
    /// A navigation (or a new tab) to a page no client may control.
    pub const FORBIDDEN_URL: &str = "FORBIDDEN_URL";
    /// A CDP command the extension does not relay.
    pub const FORBIDDEN_METHOD: &str = "FORBIDDEN_METHOD";
    /// The browser answered the CDP command with an error.
    pub const CDP_ERROR: &str = "CDP_ERROR";
    /// The peer did not prove the shared secret (`hello`), or a status request was
    /// not signed with it.
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    /// The operation ran past its deadline.
    pub const TIMEOUT: &str = "TIMEOUT";
    /// The frame would exceed the size limit.
    pub const TOO_LARGE: &str = "TOO_LARGE";
    /// The connection closed before the reply came (local to the sender).
    pub const DISCONNECTED: &str = "DISCONNECTED";
    /// A bug; the message says where.
    pub const INTERNAL: &str = "INTERNAL";
}

/// An error as it travels on the wire: `{"code", "message", "data"?}`.
///
/// Received errors keep the peer's code (see [`codes`]); errors made locally by the
/// bridge are `TIMEOUT` (no reply before the deadline), `DISCONNECTED` (the connection
/// closed first), `TOO_LARGE` (the request frame is over the outgoing limit; nothing
/// was sent) and `BAD_REQUEST` (the peer's reply was malformed).
/// `Display` gives `CODE: message`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct WireError {
    /// A stable code from [`codes`] (or a newer peer's code).
    pub code: String,
    /// What happened, for people.
    #[serde(default)]
    pub message: String,
    /// Machine-readable details (e.g. `TAB_BUSY`'s holder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl WireError {
    /// An error with no data.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            data: None,
        }
    }

    /// The same error with `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// Whether the code is `code`.
    pub fn is(&self, code: &str) -> bool {
        self.code == code
    }

    /// `BAD_REQUEST` with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(codes::BAD_REQUEST, message)
    }
}
