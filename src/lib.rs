//! tabmux: many AI clients, one real browser.
//!
//! The parts: [`mcp`] (the MCP server and its tools), [`browser`] (tabs, pages, refs),
//! [`link`] (how CDP reaches a browser), [`cdp`] (the protocol connection),
//! [`snapshot`] (accessibility tree to text), [`registry`] (the port registry),
//! [`bridge`] (the WebSocket endpoint the extension connects to), [`auth`] (the secret
//! both ends prove), [`secure_fs`] (private state files) and [`progress`] (what a long
//! call is doing, for progress notifications).

// No function in src/ over 120 lines (threshold in clippy.toml).
#![warn(clippy::too_many_lines)]

pub mod auth;
pub mod bridge;
pub mod browser;
pub mod cdp;
pub mod error;
pub mod extension_files;
pub mod link;
pub mod mcp;
pub mod memory;
pub mod progress;
pub mod registry;
pub mod secure_fs;
pub mod snapshot;
