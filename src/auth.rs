//! The per-install secret and the proofs made with it (`docs/PROTOCOL.md`,
//! "Authentication").
//!
//! tabmux and its extension share a 256-bit secret: `<state dir>/secret` (a private
//! file, see [`crate::secure_fs`]) and `config.json` in the extension's folder (written
//! by `tabmux extension install` and for the shared browser). Each side proves that it
//! knows it with an HMAC-SHA256 over both sides' fresh nonces and the port, with a label
//! per direction so that a proof can never be sent back as the other side's; tabmux's
//! proof also covers its instance id. `tabmux status` signs its HTTP requests the same
//! way (a third label).
//!
//! A copy of the extension without `config.json` (the Chrome Web Store's) gets the
//! secret from the user instead: `tabmux extension pair` prints it as a pairing code
//! ([`Secret::pairing_code`]) to paste in the extension's popup.
//!
//! Proofs are compared in constant time. The secret is never logged (its `Debug` shows
//! nothing of it).

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::secure_fs;

/// The secret's file in the state directory.
pub const SECRET_FILE: &str = "secret";
/// Label of the extension's proof.
pub const LABEL_EXTENSION: &str = "tabmux-v1 extension proof";
/// Label of tabmux's proof.
pub const LABEL_TABMUX: &str = "tabmux-v1 tabmux proof";
/// Label of a signed status request (`tabmux status`).
pub const LABEL_STATUS: &str = "tabmux-v1 status request";
/// Length of a nonce in hex digits (32 random bytes).
pub const NONCE_HEX_LEN: usize = 64;

/// The 256-bit per-install secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A fresh random secret from the OS.
    pub fn generate() -> io::Result<Secret> {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
        Ok(Secret(b))
    }

    /// A secret from its 32 bytes (tests).
    pub fn from_bytes(b: [u8; 32]) -> Secret {
        Secret(b)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Secret> {
        let v = from_hex(s.trim())?;
        Some(Secret(v.try_into().ok()?))
    }

    /// The 64 hex digits (for the extension's `config.json`).
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// The pairing code `tabmux extension pair` prints for a copy of the extension
    /// without `config.json`: the secret itself (the boundary is the OS user, who can
    /// read the state directory anyway), as 8 groups of 8 hex digits joined by `-`.
    pub fn pairing_code(&self) -> String {
        let hex = self.to_hex();
        let groups: Vec<&str> = (0..8).map(|i| &hex[i * 8..i * 8 + 8]).collect();
        groups.join("-")
    }

    /// Parses a pairing code: 64 hex digits in any case, spaces and dashes ignored.
    pub fn from_pairing_code(code: &str) -> Option<Secret> {
        let digits: String = code
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        Secret::from_hex(&digits.to_ascii_lowercase())
    }

    /// HMAC-SHA256 of [`message`]`(label, parts)`, as hex.
    pub fn proof(&self, label: &str, parts: &[&str]) -> String {
        to_hex(&hmac_sha256(&self.0, &message(label, parts)))
    }

    /// Whether `proof` is [`Secret::proof`] of `label` and `parts` (constant time).
    pub fn verify(&self, label: &str, parts: &[&str], proof: &str) -> bool {
        ct_eq(self.proof(label, parts).as_bytes(), proof.as_bytes())
    }
}

/// The extension's proof: over tabmux's nonce, the extension's nonce and the port.
pub fn extension_proof(secret: &Secret, tabmux_nonce: &str, ext_nonce: &str, port: u16) -> String {
    secret.proof(
        LABEL_EXTENSION,
        &[tabmux_nonce, ext_nonce, &port.to_string()],
    )
}

/// tabmux's proof: over both nonces, the port and its instance id.
pub fn tabmux_proof(
    secret: &Secret,
    tabmux_nonce: &str,
    ext_nonce: &str,
    port: u16,
    instance_id: &str,
) -> String {
    secret.proof(
        LABEL_TABMUX,
        &[tabmux_nonce, ext_nonce, &port.to_string(), instance_id],
    )
}

/// The bytes an HMAC covers: the label, a zero byte, then each part as a 4-byte
/// big-endian length and its UTF-8 bytes (so no two lists of parts give the same bytes).
pub fn message(label: &str, parts: &[&str]) -> Vec<u8> {
    let mut m =
        Vec::with_capacity(label.len() + 1 + parts.iter().map(|p| p.len() + 4).sum::<usize>());
    m.extend_from_slice(label.as_bytes());
    m.push(0);
    for p in parts {
        m.extend_from_slice(&(p.len() as u32).to_be_bytes());
        m.extend_from_slice(p.as_bytes());
    }
    m
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for i in 0..BLOCK {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    let outer = Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize();
    outer.into()
}

/// Equality whose time depends only on the lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut d = 0u8;
    for (x, y) in a.iter().zip(b) {
        d |= x ^ y;
    }
    std::hint::black_box(d) == 0
}

/// A fresh nonce: 32 random bytes as 64 hex digits.
pub fn nonce() -> io::Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
    Ok(to_hex(&b))
}

/// Whether `s` has the shape of a nonce (64 lowercase hex digits).
pub fn is_nonce(s: &str) -> bool {
    s.len() == NONCE_HEX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lowercase hex.
pub fn to_hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Path of the secret in `state_dir`.
pub fn secret_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SECRET_FILE)
}

fn bad_secret_file(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} does not hold a tabmux secret (64 hex digits). Run `tabmux secret rotate` to \
             make a new one, then reinstall the extension (`tabmux extension install DIR`)",
            path.display()
        ),
    )
}

/// Reads the secret of `state_dir`, if it has one (`Ok(None)` when the file is missing).
pub fn load(state_dir: &Path) -> io::Result<Option<Secret>> {
    let path = secret_path(state_dir);
    match secure_fs::read_private(&path, true) {
        Ok(b) => {
            let text = String::from_utf8(b).map_err(|_| bad_secret_file(&path))?;
            Secret::from_hex(&text)
                .map(Some)
                .ok_or_else(|| bad_secret_file(&path))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The secret of `state_dir` (a private directory, made if missing); created on first use.
pub fn load_or_create(state_dir: &Path) -> io::Result<Secret> {
    secure_fs::ensure_private_dir(state_dir)?;
    if let Some(s) = load(state_dir)? {
        return Ok(s);
    }
    let fresh = Secret::generate()?;
    let text = format!("{}\n", fresh.to_hex());
    if secure_fs::create_new_private(&secret_path(state_dir), text.as_bytes())? {
        tracing::info!(dir = %state_dir.display(), "made a new secret");
        return Ok(fresh);
    }
    // Another tabmux made one at the same moment: use that.
    load(state_dir)?.ok_or_else(|| bad_secret_file(&secret_path(state_dir)))
}

/// Replaces the secret of `state_dir` with a fresh one.
pub fn rotate(state_dir: &Path) -> io::Result<Secret> {
    secure_fs::ensure_private_dir(state_dir)?;
    let fresh = Secret::generate()?;
    secure_fs::write_private(
        &secret_path(state_dir),
        format!("{}\n", fresh.to_hex()).as_bytes(),
    )?;
    Ok(fresh)
}

/// The `Authorization` header value of a signed status request for `path` on `port`:
/// `Tabmux ts=<unix ms>,nonce=<hex>,proof=<hex>`.
pub fn status_authorization(secret: &Secret, port: u16, path: &str) -> io::Result<String> {
    let ts = crate::registry::unix_ms().to_string();
    let n = nonce()?;
    let proof = secret.proof(LABEL_STATUS, &[&ts, &n, &port.to_string(), path]);
    Ok(format!("Tabmux ts={ts},nonce={n},proof={proof}"))
}

/// A signed status request's parts, once checked: its timestamp and nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusAuth {
    pub ts: u64,
    pub nonce: String,
}

/// Checks an `Authorization` header made by [`status_authorization`]: the proof, and
/// a timestamp within `window_ms` of `now_ms`. (Replays inside the window are the
/// caller's to refuse, by nonce.)
pub fn verify_status_authorization(
    secret: &Secret,
    header: &str,
    port: u16,
    path: &str,
    now_ms: u64,
    window_ms: u64,
) -> Option<StatusAuth> {
    let rest = header.strip_prefix("Tabmux ")?;
    let (mut ts, mut n, mut proof) = (None, None, None);
    for kv in rest.split(',') {
        match kv.trim().split_once('=')? {
            ("ts", v) => ts = Some(v),
            ("nonce", v) => n = Some(v),
            ("proof", v) => proof = Some(v),
            _ => return None,
        }
    }
    let (ts, n, proof) = (ts?, n?, proof?);
    if !is_nonce(n) {
        return None;
    }
    let t: u64 = ts.parse().ok()?;
    if !secret.verify(LABEL_STATUS, &[ts, n, &port.to_string(), path], proof) {
        return None;
    }
    (now_ms.abs_diff(t) <= window_ms).then(|| StatusAuth {
        ts: t,
        nonce: n.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            to_hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            to_hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn the_pairing_code_is_the_secret_in_groups() {
        let s = Secret::from_bytes(core::array::from_fn(|i| i as u8 * 7));
        let code = s.pairing_code();
        assert_eq!(code.len(), 64 + 7);
        assert_eq!(code.split('-').count(), 8);
        assert!(code.split('-').all(|g| g.len() == 8));
        assert_eq!(code.replace('-', ""), s.to_hex());
        assert_eq!(Secret::from_pairing_code(&code), Some(s.clone()));
        let spaced = code.to_uppercase().replace('-', " ");
        assert_eq!(Secret::from_pairing_code(&format!(" {spaced}\n")), Some(s));
        assert_eq!(Secret::from_pairing_code(&code[..70]), None);
        assert_eq!(Secret::from_pairing_code(&code.replace('a', "g")), None);
    }

    #[test]
    fn the_message_encoding_keeps_parts_apart() {
        assert_ne!(message("l", &["ab", "c"]), message("l", &["a", "bc"]));
        assert_ne!(message("l", &["a"]), message("l", &["a", ""]));
    }

    #[test]
    fn hex_round_trips_and_debug_hides_the_secret() {
        let s = Secret::generate().unwrap();
        assert_eq!(Secret::from_hex(&s.to_hex()), Some(s.clone()));
        assert!(Secret::from_hex("xyz").is_none());
        assert!(!format!("{s:?}").contains(&s.to_hex()[..8]));
        assert!(is_nonce(&nonce().unwrap()));
    }

    #[test]
    fn status_authorization_round_trips() {
        let s = Secret::from_bytes([3; 32]);
        let h = status_authorization(&s, 9000, "/tabmux/tabs").unwrap();
        let now = crate::registry::unix_ms();
        assert!(verify_status_authorization(&s, &h, 9000, "/tabmux/tabs", now, 30_000).is_some());
        assert!(verify_status_authorization(&s, &h, 9001, "/tabmux/tabs", now, 30_000).is_none());
        assert!(verify_status_authorization(&s, &h, 9000, "/tabmux/status", now, 30_000).is_none());
        assert!(
            verify_status_authorization(&s, &h, 9000, "/tabmux/tabs", now + 60_000, 30_000)
                .is_none()
        );
        let other = Secret::from_bytes([4; 32]);
        assert!(
            verify_status_authorization(&other, &h, 9000, "/tabmux/tabs", now, 30_000).is_none()
        );
    }
}

#[cfg(test)]
mod cross_check {
    /// The same proof as extension/lib/auth.js computes (see extension/test/auth.test.js).
    #[test]
    fn a_known_extension_proof() {
        let s = super::Secret::from_bytes([7; 32]);
        assert_eq!(
            super::extension_proof(&s, "aa", "bb", 9000),
            "d63d24bbbebaa2017c108fdf601dccfa0100c17f8ed22c256dd78ef8e4e3b2f2"
        );
    }
}
