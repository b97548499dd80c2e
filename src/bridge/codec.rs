//! The frame codec: one text frame ⇄ one [`Frame`], with no I/O.
//!
//! ```text
//! request   {"id": 7, "method": "tabs.create", "params": {...}, "trace": "t-3f9a"}
//! reply     {"id": 7, "result": {...}}
//! error     {"id": 7, "error": {"code": "TAB_BUSY", "message": "...", "data": {...}}}
//! event     {"event": "tab.closed", "params": {...}}
//! ```
//!
//! Decoding never panics: anything that is not one of these four shapes is a
//! [`DecodeError`] that says what is wrong and which id, if any, could be read.
//! Unknown extra keys are ignored (a newer peer may add some). Absent or `null`
//! `params` decode as `{}`; `"data": null` decodes as no data.

use serde::Serialize;
use serde_json::{Map, Value};

use super::error::WireError;

/// Event name under which frame-level errors without a readable request id are reported.
pub const PROTOCOL_ERROR_EVENT: &str = "protocol.error";

/// One message of the wire protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A request; the peer answers with a [`Frame::Reply`] or [`Frame::Error`] of the same id.
    Request {
        /// Positive, unique per sender and connection.
        id: u64,
        /// The method, e.g. `tabs.create`.
        method: String,
        /// Always an object.
        params: Value,
        /// The tool call that caused this request, for logs across processes.
        trace: Option<String>,
    },
    /// A successful reply.
    Reply {
        /// The id of the request answered.
        id: u64,
        /// Any JSON value.
        result: Value,
    },
    /// A failed reply.
    Error {
        /// The id of the request answered.
        id: u64,
        /// What went wrong.
        error: WireError,
    },
    /// A one-way message (no id, no answer).
    Event {
        /// The event, e.g. `tab.closed`.
        event: String,
        /// Always an object.
        params: Value,
    },
}

/// Why a text frame is not a valid [`Frame`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// What is wrong, for people (never contains the frame itself).
    pub message: String,
    /// The id of a malformed request, when one could be read: answer
    /// `{"id", "error": BAD_REQUEST}`. When `None`, answer with the
    /// [`PROTOCOL_ERROR_EVENT`] event.
    pub request_id: Option<u64>,
    /// The id of a malformed reply or error, when one could be read: the pending
    /// request of that id can be failed at once instead of waiting for its deadline.
    pub reply_id: Option<u64>,
}

impl DecodeError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            request_id: None,
            reply_id: None,
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn read_id(map: &Map<String, Value>) -> Result<u64, String> {
    match map.get("id") {
        None => Err("missing \"id\"".into()),
        Some(v) => match v.as_u64() {
            Some(id) if id > 0 => Ok(id),
            _ => Err(format!(
                "\"id\" must be a positive integer, got {}",
                kind_of(v)
            )),
        },
    }
}

fn read_params(map: &Map<String, Value>) -> Result<Value, String> {
    match map.get("params") {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(v @ Value::Object(_)) => Ok(v.clone()),
        Some(v) => Err(format!("\"params\" must be an object, got {}", kind_of(v))),
    }
}

/// Decodes one text frame.
pub fn decode(text: &str) -> Result<Frame, DecodeError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| DecodeError::new(format!("frame is not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(DecodeError::new(format!(
            "a frame must be a JSON object, got {}",
            kind_of(&value)
        )));
    };

    if let Some(method) = map.get("method") {
        return decode_request(&map, method);
    }
    if let Some(result) = map.get("result") {
        let id = read_id(&map).map_err(|m| DecodeError::new(format!("reply: {m}")))?;
        return Ok(Frame::Reply {
            id,
            result: result.clone(),
        });
    }
    if let Some(error) = map.get("error") {
        return decode_error(&map, error);
    }
    if let Some(event) = map.get("event") {
        let event = match event {
            Value::String(s) if !s.is_empty() => s.clone(),
            v => {
                return Err(DecodeError::new(format!(
                    "event: \"event\" must be a non-empty string, got {}",
                    kind_of(v)
                )));
            }
        };
        let params =
            read_params(&map).map_err(|m| DecodeError::new(format!("event {event}: {m}")))?;
        return Ok(Frame::Event { event, params });
    }
    Err(match read_id(&map) {
        Ok(id) => DecodeError {
            message: format!("frame {id} has none of \"method\", \"result\", \"error\""),
            request_id: Some(id),
            reply_id: None,
        },
        Err(_) => DecodeError::new(
            "a frame needs one of \"method\" (request), \"result\" or \"error\" (reply), \"event\"",
        ),
    })
}

fn decode_request(map: &Map<String, Value>, method: &Value) -> Result<Frame, DecodeError> {
    let id = read_id(map).map_err(|m| DecodeError::new(format!("request: {m}")))?;
    let fail = |message: String| DecodeError {
        message,
        request_id: Some(id),
        reply_id: None,
    };
    let method = match method {
        Value::String(s) if !s.is_empty() => s.clone(),
        v => {
            return Err(fail(format!(
                "request {id}: \"method\" must be a non-empty string, got {}",
                kind_of(v)
            )));
        }
    };
    let params = read_params(map).map_err(|m| fail(format!("request {id}: {m}")))?;
    let trace = match map.get("trace") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            return Err(fail(format!(
                "request {id}: \"trace\" must be a string, got {}",
                kind_of(v)
            )));
        }
    };
    Ok(Frame::Request {
        id,
        method,
        params,
        trace,
    })
}

fn decode_error(map: &Map<String, Value>, error: &Value) -> Result<Frame, DecodeError> {
    let id = read_id(map).map_err(|m| DecodeError::new(format!("error reply: {m}")))?;
    let fail = |message: String| DecodeError {
        message,
        request_id: None,
        reply_id: Some(id),
    };
    let Value::Object(err) = error else {
        return Err(fail(format!(
            "error reply {id}: \"error\" must be an object, got {}",
            kind_of(error)
        )));
    };
    let code = match err.get("code") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        other => {
            return Err(fail(format!(
                "error reply {id}: \"error.code\" must be a non-empty string, got {}",
                other.map_or("nothing", kind_of)
            )));
        }
    };
    let message = match err.get("message") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => {
            return Err(fail(format!(
                "error reply {id}: \"error.message\" must be a string, got {}",
                kind_of(v)
            )));
        }
    };
    let data = match err.get("data") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.clone()),
    };
    Ok(Frame::Error {
        id,
        error: WireError {
            code,
            message,
            data,
        },
    })
}

#[derive(Serialize)]
struct RequestOut<'a> {
    id: u64,
    method: &'a str,
    params: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<&'a str>,
}

#[derive(Serialize)]
struct ReplyOut<'a> {
    id: u64,
    result: &'a Value,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    id: u64,
    error: &'a WireError,
}

#[derive(Serialize)]
struct EventOut<'a> {
    event: &'a str,
    params: &'a Value,
}

fn to_text<T: Serialize>(v: &T) -> String {
    // Serializing these structs of strings, integers and `Value`s cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| String::from("{}"))
}

/// Encodes a request without copying its params.
pub fn encode_request(id: u64, method: &str, params: &Value, trace: Option<&str>) -> String {
    to_text(&RequestOut {
        id,
        method,
        params,
        trace,
    })
}

/// Encodes an event without copying its params.
pub fn encode_event(event: &str, params: &Value) -> String {
    to_text(&EventOut { event, params })
}

/// Encodes a successful reply.
pub fn encode_reply(id: u64, result: &Value) -> String {
    to_text(&ReplyOut { id, result })
}

/// Encodes an error reply.
pub fn encode_error(id: u64, error: &WireError) -> String {
    to_text(&ErrorOut { id, error })
}

/// Encodes any frame.
pub fn encode(frame: &Frame) -> String {
    match frame {
        Frame::Request {
            id,
            method,
            params,
            trace,
        } => encode_request(*id, method, params, trace.as_deref()),
        Frame::Reply { id, result } => encode_reply(*id, result),
        Frame::Error { id, error } => encode_error(*id, error),
        Frame::Event { event, params } => encode_event(event, params),
    }
}

/// The answer to a frame that could not be decoded: an error reply when a request id
/// could be read, else a [`PROTOCOL_ERROR_EVENT`] event. Both carry `BAD_REQUEST`.
pub fn bad_request_answer(err: &DecodeError) -> String {
    let error = WireError::bad_request(err.message.clone());
    match err.request_id {
        Some(id) => encode_error(id, &error),
        None => protocol_error_event(&error),
    }
}

/// The [`PROTOCOL_ERROR_EVENT`] event carrying `error`.
pub fn protocol_error_event(error: &WireError) -> String {
    let params = serde_json::to_value(error).unwrap_or_else(|_| Value::Object(Map::new()));
    encode_event(PROTOCOL_ERROR_EVENT, &params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_the_four_shapes() {
        assert_eq!(
            decode(r#"{"id":7,"method":"ping"}"#).unwrap(),
            Frame::Request {
                id: 7,
                method: "ping".into(),
                params: json!({}),
                trace: None
            }
        );
        assert_eq!(
            decode(r#"{"id":7,"result":{"a":1}}"#).unwrap(),
            Frame::Reply {
                id: 7,
                result: json!({"a":1})
            }
        );
        assert_eq!(
            decode(r#"{"id":7,"error":{"code":"TAB_BUSY","message":"m","data":null}}"#).unwrap(),
            Frame::Error {
                id: 7,
                error: WireError::new("TAB_BUSY", "m")
            }
        );
        assert_eq!(
            decode(r#"{"event":"tab.closed","params":{"tabId":3}}"#).unwrap(),
            Frame::Event {
                event: "tab.closed".into(),
                params: json!({"tabId":3})
            }
        );
    }

    #[test]
    fn reports_readable_ids() {
        let e = decode(r#"{"id":3,"method":"x","params":[1]}"#).unwrap_err();
        assert_eq!(e.request_id, Some(3));
        let e = decode(r#"{"id":4,"error":"nope"}"#).unwrap_err();
        assert_eq!((e.request_id, e.reply_id), (None, Some(4)));
        let e = decode(r#"{"id":0,"method":"x"}"#).unwrap_err();
        assert_eq!(e.request_id, None);
        let e = decode("[1,2]").unwrap_err();
        assert!(e.message.contains("an array"), "{}", e.message);
        assert!(bad_request_answer(&e).contains(PROTOCOL_ERROR_EVENT));
    }
}
