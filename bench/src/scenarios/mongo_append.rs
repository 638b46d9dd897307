//! Scenario 3: durable appends on MongoDB against the raw `mongodb` driver (not built yet).

use crate::report::Row;
use std::path::Path;

pub async fn run(_bin: &Path, _uri: &str, _seconds: u64) -> Vec<Row> {
    Vec::new()
}
