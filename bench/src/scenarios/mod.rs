//! The scenarios, one module each, numbered as in BENCHMARKS.md.

pub mod append;
pub mod idle;
pub mod replay;
pub mod room_open;
