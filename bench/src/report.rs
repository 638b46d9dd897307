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
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "Run of {} ({} mode), 2 cores shared by the server and the load generator.\n\n",
            self.date, self.mode
        );
        out.push_str(
            "| scenario | case | result | same-run baseline | ratio | target | met | notes |\n",
        );
        out.push_str("|---|---|---|---|---|---|---|---|\n");
        for r in &self.rows {
            let ratio = r.ratio.map_or("–".to_owned(), |x| format!("{x:.2}"));
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {ratio} | {} | {met} | {} |\n",
                r.scenario, r.case, r.result, r.baseline, r.target, r.notes
            ));
        }
        out
    }

    /// Writes the JSON to `json`, and the table into `benchmarks` between
    /// `<!-- bench:start -->` and `<!-- bench:end -->` (appended with the
    /// markers when they are not there yet).
    pub fn write(&self, json: &Path, benchmarks: &Path) -> std::io::Result<()> {
        std::fs::write(json, serde_json::to_vec_pretty(self)?)?;
        let table = self.markdown();
        let doc = std::fs::read_to_string(benchmarks).unwrap_or_default();
        let (start, end) = ("<!-- bench:start -->", "<!-- bench:end -->");
        let doc = match (doc.find(start), doc.find(end)) {
            (Some(a), Some(b)) if a < b => {
                format!("{}{start}\n{table}{}", &doc[..a], &doc[b..])
            }
            _ => format!("{doc}\n## Every path against its baseline (`scripts/bench.sh`)\n\n{start}\n{table}{end}\n"),
        };
        std::fs::write(benchmarks, doc)
    }
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
    use super::thousands;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234.0), "1,234");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
