//! The scenarios, one module each, numbered as in BENCHMARKS.md.

pub mod append;
pub mod cross_instance;
pub mod fanout;
pub mod growth;
pub mod http_floor;
pub mod idle;
pub mod mongo_append;
pub mod replay;
pub mod room_open;
pub mod text;
