//! Scenario 4: fan-out of one room to many WebSocket subscribers against an axum broadcast chat (not built yet).

use crate::report::Row;
use std::path::Path;

pub async fn run(_bin: &Path, _subscribers: usize) -> Vec<Row> {
    Vec::new()
}
