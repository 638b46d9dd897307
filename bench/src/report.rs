//! The results of a run: one row per measured case, each next to its
//! baseline of the same run, printed as a Markdown table, written as JSON,
//! and put into BENCHMARKS.md between two markers.

use serde::Serialize;
use std::path::Path;

/// One measured case.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub scenario: String,
    pub case: String,
    /// What was measured, with its unit (e.g. "12,000 events/s; p50 1.2 ms").
    pub result: String,
    /// The same-run baseline, with its unit.
    pub baseline: String,
    /// result / baseline, on the scale where more is better.
    pub ratio: Option<f64>,
    pub target: String,
    /// Whether the target was met (None: no target for this row).
    pub met: Option<bool>,
    /// CPU, memory, and whether the load generator may have been the bottleneck.
    pub notes: String,
    /// The raw figures, for the JSON.
    pub figures: serde_json::Value,
}

/// A whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub mode: &'static str,
    pub rows: Vec<Row>,
}

impl Report {
    /// This run's rows as Markdown table lines, each marked with the run.
    fn lines(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| {
                let ratio = r.ratio.map_or("–".to_owned(), |x| format!("{x:.2}"));
                let met = match r.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "–",
                };
                format!(
                    "| {} | {} | {} | {} | {ratio} | {} | {met} | {} | {} ({}) |",
                    r.scenario,
                    r.case,
                    r.result,
                    r.baseline,
                    r.target,
                    r.notes,
                    self.date,
                    self.mode
                )
            })
            .collect()
    }

    /// The table of this run alone.
    pub fn markdown(&self) -> String {
        table(&self.lines())
    }

    /// Writes the JSON to `json`, and the table into `benchmarks` between
    /// `<!-- bench:start -->` and `<!-- bench:end -->` (appended with the
    /// markers when they are not there yet). Rows there of scenarios this
    /// run did not measure stay (a run with `--only` replaces only the rows
    /// with its own scenario cells); each row says which run it is from.
    pub fn write(&self, json: &Path, benchmarks: &Path) -> std::io::Result<()> {
        std::fs::write(json, serde_json::to_vec_pretty(self)?)?;
        let doc = std::fs::read_to_string(benchmarks).unwrap_or_default();
        let (start, end) = ("<!-- bench:start -->", "<!-- bench:end -->");
        let measured: Vec<&str> = self.rows.iter().map(|r| r.scenario.as_str()).collect();
        let doc = match (doc.find(start), doc.find(end)) {
            (Some(a), Some(b)) if a < b => {
                let mut lines: Vec<String> = doc[a..b]
                    .lines()
                    .filter(|l| l.starts_with("| ") && !l.starts_with("| scenario |"))
                    .filter(|l| !measured.contains(&first_cell(l)))
                    .map(str::to_owned)
                    .collect();
                lines.extend(self.lines());
                // By scenario number; a stable sort keeps each run's order.
                lines.sort_by_key(|l| number(&l[2..]).parse::<u32>().unwrap_or(u32::MAX));
                format!("{}{start}\n{}{}", &doc[..a], table(&lines), &doc[b..])
            }
            _ => format!(
                "{doc}\n## Every path against its baseline (`scripts/bench.sh`)\n\n{start}\n{}{end}\n",
                self.markdown()
            ),
        };
        std::fs::write(benchmarks, doc)
    }
}

/// The scenario number a row's first cell starts with ("2" of "2 durable append").
fn number(cell: &str) -> &str {
    let digits = cell
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(cell.len());
    &cell[..digits]
}

/// A table line's first cell ("2 durable append, embedded").
fn first_cell(line: &str) -> &str {
    line.split('|').nth(1).map_or("", str::trim)
}

fn table(lines: &[String]) -> String {
    let mut out = String::from(
        "2 cores shared by the server and the load generator; each row says which run it is from.\n\n\
         | scenario | case | result | same-run baseline | ratio | target | met | notes | run |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// 12345.6 → "12,346".
pub fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{first_cell, number, thousands};

    #[test]
    fn a_row_is_keyed_by_its_scenario_number() {
        assert_eq!(number("2 durable append, embedded"), "2");
        assert_eq!(number("12 x"), "12");
        assert_eq!(number("x"), "");
        assert_eq!(
            first_cell("| 8 storage, embedded | after |"),
            "8 storage, embedded"
        );
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234.0), "1,234");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
