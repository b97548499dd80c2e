//! tabmux: many AI clients, one real browser.
pub mod snapshot;
