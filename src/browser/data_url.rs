//! `data:` URLs where the browser will not open them. Through the extension, Chromium
//! counts every navigation the extension starts (`Page.navigate` of its debugger,
//! `chrome.tabs.update`) as started by the extension's origin, and blocks top-level
//! `data:` navigations of that kind (`net::ERR_ABORTED`). A textual document is then
//! written into a blank page of the tab instead: same content, scripts run, the URL
//! reads `about:blank`.

use std::time::Instant;

use base64::Engine;
use serde_json::{Value, json};

use super::page::Page;
use crate::error::Result;

/// Whether `url` is a `data:` URL.
pub fn is_data(url: &str) -> bool {
    url.get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("data:"))
}

/// Decodes a `data:` URL: its media type (lower case, without parameters) and bytes.
pub fn decode(url: &str) -> Option<(String, Vec<u8>)> {
    let rest = url.get(5..).filter(|_| is_data(url))?;
    let (meta, payload) = rest.split_once(',')?;
    let mut parts = meta.split(';').map(str::trim);
    let mime = parts.next().unwrap_or("").to_ascii_lowercase();
    let base64 = meta
        .split(';')
        .any(|p| p.trim().eq_ignore_ascii_case("base64"));
    let raw = percent_decode(payload);
    let bytes = if base64 {
        let clean: Vec<u8> = raw
            .into_iter()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(&clean)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&clean))
            .ok()?
    } else {
        raw
    };
    let mime = if mime.is_empty() {
        "text/plain".to_string()
    } else {
        mime
    };
    Some((mime, bytes))
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// The HTML that shows a `data:` URL's document, for textual media types.
pub fn as_html(url: &str) -> Option<String> {
    let (mime, bytes) = decode(url)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    match mime.as_str() {
        "text/html" | "application/xhtml+xml" => Some(text),
        m if m.starts_with("text/") || m == "application/json" || m.ends_with("+json") => {
            let escaped = text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            Some(format!(
                "<pre style=\"word-wrap: break-word; white-space: pre-wrap;\">{escaped}</pre>"
            ))
        }
        _ => None,
    }
}

/// Opens a blank page in the tab and writes the `data:` URL's document into it.
/// Returns a note for the answer, or `None` when the document is not textual.
pub async fn write_into_blank(page: &Page, url: &str, deadline: Instant) -> Result<Option<String>> {
    let Some(html) = as_html(url) else {
        return Ok(None);
    };
    let nav = page.state().nav;
    let r: Value = page
        .call("Page.navigate", json!({"url": "about:blank"}))
        .await?;
    if r["loaderId"].is_string() {
        page.wait_until(deadline, |s| s.nav != nav && s.loaded())
            .await;
    }
    let frame = page.state().main_frame.clone();
    page.call::<Value>(
        "Page.setDocumentContent",
        json!({"frameId": frame, "html": html}),
    )
    .await?;
    Ok(Some(
        "This browser does not let its extension open data: URLs, so the document was written into a blank page (its URL reads about:blank).".to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_data_urls() {
        assert_eq!(
            decode("data:text/html,<h1>Hi there</h1>").unwrap(),
            ("text/html".into(), b"<h1>Hi there</h1>".to_vec())
        );
        assert_eq!(
            decode("DATA:text/plain;charset=utf-8,a%20b%zz").unwrap().1,
            b"a b%zz".to_vec()
        );
        assert_eq!(
            decode("data:;base64,aGk=").unwrap(),
            ("text/plain".into(), b"hi".to_vec())
        );
        assert_eq!(decode("data:,x").unwrap().0, "text/plain");
        assert!(decode("data:text/html").is_none());
        assert!(decode("http://x").is_none());
        assert!(as_html("data:image/png;base64,AAAA").is_none());
        assert_eq!(
            as_html("data:text/plain,<b>").unwrap(),
            "<pre style=\"word-wrap: break-word; white-space: pre-wrap;\">&lt;b&gt;</pre>"
        );
    }
}
