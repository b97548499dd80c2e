//! tabmux: many AI clients, one real browser.
