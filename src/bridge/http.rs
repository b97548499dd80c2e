//! The HTTP/1.1 request head, read and checked by hand (bounded in size and time),
//! and the few plain responses the bridge gives.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A parsed request head.
#[derive(Debug)]
pub(crate) struct Head {
    pub method: String,
    /// The path without its query.
    pub path: String,
    headers: Vec<(String, String)>,
}

/// Why no head could be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// Over the size limit: answer 431.
    TooLarge,
    /// Not complete before the deadline: answer 408.
    Timeout,
    /// Not a valid HTTP/1.x head: answer 400.
    Malformed(&'static str),
    /// The peer closed or the socket failed: just drop it.
    Gone,
}

/// A header that appears more than once where only one makes sense.
#[derive(Debug)]
pub(crate) struct Duplicate;

impl Head {
    /// The single value of header `name` (case-insensitive), `None` when absent.
    pub fn one(&self, name: &str) -> Result<Option<&str>, Duplicate> {
        let mut found = None;
        for (k, v) in &self.headers {
            if k.eq_ignore_ascii_case(name) {
                if found.is_some() {
                    return Err(Duplicate);
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    }

    /// Whether some `name` header carries the comma-separated `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Reads a request head of at most `max` bytes (terminator included) within
/// `deadline`. Returns the head and any bytes read past it.
pub(crate) async fn read_head(
    stream: &mut TcpStream,
    max: usize,
    deadline: Duration,
) -> Result<(Head, Vec<u8>), HeadError> {
    let read = async {
        let mut buf: Vec<u8> = Vec::with_capacity(max.min(8192));
        let mut chunk = [0u8; 4096];
        loop {
            if buf.len() >= max {
                return Err(HeadError::TooLarge);
            }
            let want = chunk.len().min(max - buf.len());
            let n = match stream.read(&mut chunk[..want]).await {
                Ok(0) | Err(_) => return Err(HeadError::Gone),
                Ok(n) => n,
            };
            let search_from = buf.len().saturating_sub(3);
            buf.extend_from_slice(&chunk[..n]);
            if let Some(pos) = find(&buf[search_from..], b"\r\n\r\n") {
                let end = search_from + pos;
                let head = parse_head(&buf[..end])?;
                return Ok((head, buf[end + 4..].to_vec()));
            }
        }
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(r) => r,
        Err(_) => Err(HeadError::Timeout),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(bytes: &[u8]) -> Result<Head, HeadError> {
    let text = std::str::from_utf8(bytes).map_err(|_| HeadError::Malformed("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed("bad request line"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HeadError::Malformed("bad method"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HeadError::Malformed("not HTTP/1.x"));
    }
    if !target.starts_with('/') {
        return Err(HeadError::Malformed("bad request target"));
    }
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HeadError::Malformed("header line without a colon"));
        };
        if name.is_empty()
            || name
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(HeadError::Malformed("bad header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(Head {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Writes a complete response with `Connection: close`, then closes politely: shut the
/// write side, and read (and drop) what the client may still send for a moment, so the
/// response is not lost to a reset caused by unread input.
pub(crate) async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
) {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n{extra_headers}\r\n",
        reason(status),
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.flush().await?;
        stream.shutdown().await
    };
    if tokio::time::timeout(Duration::from_secs(5), write)
        .await
        .is_err()
    {
        return;
    }
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut total = 0usize;
        while total < 1 << 20 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
}

/// A plain-text error response.
pub(crate) async fn respond_text(stream: &mut TcpStream, status: u16, text: &str) {
    respond(
        stream,
        status,
        "text/plain; charset=utf-8",
        "",
        format!("{text}\n").as_bytes(),
    )
    .await;
}
