//! tabmux: many AI clients, one real browser.
//!
//! The parts: [`mcp`] (the MCP server and its tools), [`browser`] (tabs, pages, refs),
//! [`link`] (how CDP reaches a browser), [`cdp`] (the protocol connection) and
//! [`snapshot`] (accessibility tree to text).

pub mod browser;
pub mod cdp;
pub mod error;
pub mod link;
pub mod mcp;
pub mod snapshot;
