//! Helpers shared by the registry and bridge tests: temporary state directories and
//! free port blocks.
#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tabmux::registry::PortRange;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "tabmux-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A block of `n` consecutive ports that are free right now, below the ephemeral
/// range and away from tabmux's default 8765–8775. Blocks handed out by one test
/// process never overlap; the start depends on the pid so that two test binaries
/// running side by side start far apart.
pub fn free_block(n: u16) -> PortRange {
    static CURSOR: Mutex<Option<u16>> = Mutex::new(None);
    const LOW: u16 = 20_000;
    const HIGH: u16 = 32_000;
    let mut cursor = CURSOR.lock().unwrap();
    let mut next = cursor.unwrap_or(LOW + (std::process::id() % 97) as u16 * 100);
    for _ in 0..1000 {
        if next + n > HIGH {
            next = LOW;
        }
        let first = next;
        next += n;
        let all_free =
            (first..first + n).all(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok());
        if all_free {
            *cursor = Some(next);
            return PortRange::new(first, first + n - 1).unwrap();
        }
    }
    panic!("no free block of {n} ports between {LOW} and {HIGH}");
}
