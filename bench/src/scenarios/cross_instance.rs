//! Scenario 5: two instances over Redis against one (not built yet).

use crate::report::Row;
use std::path::Path;

pub async fn run(_bin: &Path, _mongo: &str, _redis: &str, _subscribers: usize) -> Vec<Row> {
    Vec::new()
}
