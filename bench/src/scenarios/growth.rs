//! Scenario 9: append p99 and memory as a room and the number of rooms grow (not built yet).

use crate::report::Row;
use std::path::Path;

pub async fn run(_bin: &Path, _full: bool) -> Vec<Row> {
    Vec::new()
}
