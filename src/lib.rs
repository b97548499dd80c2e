//! tabmux: many AI clients, one real browser.

pub mod bridge;
pub mod registry;
