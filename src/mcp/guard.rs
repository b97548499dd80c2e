//! A guard in front of the MCP transport: a JSON-RPC line over the size limit is never
//! buffered whole. Without it the line would be dropped silently and its request never
//! answered; here it is replaced by a small request with the same id, which the server
//! answers with a clear error.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// The largest JSON-RPC line accepted from the client.
pub const MAX_LINE: usize = 16 << 20;

/// The method of the stand-in for an oversized request.
pub const OVERSIZED: &str = "tabmux/oversized";

/// Finds the JSON-RPC `id` (number or string) near the start of a message.
pub fn find_id(prefix: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(prefix);
    let mut rest = text.as_ref();
    while let Some(i) = rest.find("\"id\"") {
        let after = rest[i + 4..].trim_start();
        if let Some(v) = after.strip_prefix(':') {
            let v = v.trim_start();
            if let Some(s) = v.strip_prefix('"') {
                let end = s.find('"')?;
                return Some(format!("\"{}\"", &s[..end]));
            }
            let num: String = v
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '-')
                .collect();
            if !num.is_empty() {
                return Some(num);
            }
            return None;
        }
        rest = &rest[i + 4..];
    }
    None
}

/// Copies lines from `input` to `output`; a line longer than `limit` is replaced by a
/// stand-in request carrying its id (or dropped when it has none).
pub async fn guard_lines<R, W>(input: R, mut output: W, limit: usize)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut r = BufReader::with_capacity(64 << 10, input);
    let mut line: Vec<u8> = Vec::new();
    let mut prefix: Option<Vec<u8>> = None;
    loop {
        let buf = match r.fill_buf().await {
            Ok(b) if !b.is_empty() => b,
            _ => break,
        };
        let (chunk_len, newline) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let chunk = &buf[..chunk_len];
        if prefix.is_none() {
            if line.len() + chunk.len() > limit {
                let mut p = std::mem::take(&mut line);
                p.extend_from_slice(&chunk[..chunk.len().min(4096)]);
                p.truncate(4096);
                prefix = Some(p);
            } else {
                line.extend_from_slice(chunk);
            }
        }
        r.consume(chunk_len);
        if newline {
            let out = match prefix.take() {
                Some(p) => {
                    tracing::warn!("a request over {} MiB was refused", limit >> 20);
                    find_id(&p).map(|id| {
                        format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"{OVERSIZED}\"}}\n")
                            .into_bytes()
                    })
                }
                None => Some(std::mem::take(&mut line)),
            };
            line.clear();
            if let Some(out) = out
                && output.write_all(&out).await.is_err()
            {
                return;
            }
        }
    }
    if prefix.is_none() && !line.is_empty() {
        let _ = output.write_all(&line).await;
    }
    let _ = output.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(
            find_id(br#"{"jsonrpc":"2.0","id":12,"method":"x"}"#).as_deref(),
            Some("12")
        );
        assert_eq!(
            find_id(br#"{"id" : "abc","method":"x"}"#).as_deref(),
            Some("\"abc\"")
        );
        assert_eq!(find_id(br#"{"method":"x","params":{"#), None);
    }

    #[tokio::test]
    async fn oversized_lines_become_stand_ins() {
        let big = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{{\"x\":\"{}\"}}}}\n",
            "a".repeat(5000)
        );
        let input = format!("{{\"id\":1}}\n{big}{{\"id\":2}}\nno-newline-at-end");
        let (a, mut b) = tokio::io::duplex(1 << 20);
        guard_lines(input.as_bytes(), a, 1000).await;
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut b, &mut out)
            .await
            .unwrap();
        assert_eq!(
            out,
            format!(
                "{{\"id\":1}}\n{{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"{OVERSIZED}\"}}\n{{\"id\":2}}\nno-newline-at-end"
            )
        );
    }
}
