//! The benchmark run: every scenario of BENCHMARKS.md "Every path against
//! its baseline", each next to a baseline measured in the same run on the
//! same machine (these machines drift by 2× within an hour, so only the
//! ratios travel). Prints a Markdown table, writes it into BENCHMARKS.md
//! and the figures as JSON. Asserts nothing about time; a correctness
//! failure inside a scenario (a refused append, an ack out of order, a lost
//! or doubled event) fails the run.
//!
//! Run with `scripts/bench.sh` (it builds the release server first), or
//! `cargo run --release -p bench -- [--full] [--only 1,2]`.

mod measure;
mod report;
mod scenarios;
mod server;

use clap::Parser;
use report::Report;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "Benchmarks every path a user waits on against a same-run baseline")]
struct Args {
    /// The sizes of BENCHMARKS.md (about 15 minutes); without it, the short
    /// mode (under 5 minutes).
    #[arg(long)]
    full: bool,
    /// Only these scenarios (comma-separated numbers).
    #[arg(long, value_delimiter = ',')]
    only: Vec<u32>,
    /// Where the JSON goes.
    #[arg(long, default_value = "target/bench/results.json")]
    json: PathBuf,
    /// The Markdown file whose marked section gets the table.
    #[arg(long, default_value = "BENCHMARKS.md")]
    benchmarks: PathBuf,
    /// Print only; write neither file.
    #[arg(long)]
    dry_run: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let wanted = |n: u32| args.only.is_empty() || args.only.contains(&n);
    let mut rows = Vec::new();
    if wanted(1) {
        let events = if args.full { 1_000_000 } else { 200_000 };
        eprintln!("scenario 1: replay of {events} events against serde_json's floor");
        rows.extend(
            tokio::task::spawn_blocking(move || scenarios::replay::run(events))
                .await
                .expect("scenario 1"),
        );
        match (
            std::env::var("BENCH_REPLAY_NATIVE"),
            std::env::var("BENCH_REPLAY_WASM"),
        ) {
            (Ok(native), Ok(wasm)) => match scenarios::replay::wasm_row(&native, &wasm) {
                Some(row) => rows.push(row),
                None => panic!("scenario 1's WASM figures are not in the expected form: {native:?} / {wasm:?}"),
            },
            _ => eprintln!("scenario 1's WASM half skipped: BENCH_REPLAY_NATIVE and BENCH_REPLAY_WASM are not set (scripts/bench.sh sets them)"),
        }
    }
    if wanted(2) {
        let seconds = if args.full { 10 } else { 3 };
        eprintln!("scenarios 2 and 8: durable appends on the embedded store against raw redb ({seconds} s a case), then the bytes they take on disk");
        // Scenario 8 after 1,000,000 events in full mode, as the issue
        // asks: what the cases appended depends on the machine's speed.
        let fill_to = if args.full { 1_000_000 } else { 0 };
        rows.extend(scenarios::append::run(&server::binary(), seconds, fill_to).await);
    }
    if wanted(3) {
        let seconds = if args.full { 10 } else { 3 };
        match std::env::var("BENCH_MONGODB_URI") {
            Ok(uri) => {
                eprintln!("scenario 3: durable appends on MongoDB against the raw driver ({seconds} s a case), then its data size (after BENCH_MONGODB_FILL events in full mode)");
                // Scenario 8 after this many events in full mode
                // (scripts/bench.sh: 1,000,000 on SecantusDB's Rust build).
                let fill_to = match std::env::var("BENCH_MONGODB_FILL") {
                    Ok(n) if args.full => n.parse().expect("BENCH_MONGODB_FILL: a number"),
                    _ => 0,
                };
                // The databases of a short run are left to a MongoDB
                // server thrown away after the run (scripts/bench.sh's):
                // SecantusDB's Python build takes over half a minute to
                // drop them. A full run drops them, since the million
                // events would weigh on the scenarios after it.
                let scratch = !args.full && std::env::var_os("BENCH_MONGODB_SCRATCH").is_some();
                rows.extend(
                    scenarios::mongo_append::run(
                        &server::binary(),
                        &uri,
                        seconds,
                        fill_to,
                        scratch,
                    )
                    .await,
                );
            }
            Err(_) => eprintln!(
                "scenario 3 skipped: BENCH_MONGODB_URI is not set (scripts/bench.sh sets it)"
            ),
        }
    }
    if wanted(4) {
        let subscribers = if args.full { 1_000 } else { 200 };
        eprintln!(
            "scenario 4: fan-out to {subscribers} subscribers against an axum broadcast chat"
        );
        rows.extend(scenarios::fanout::run(&server::binary(), subscribers).await);
    }
    if wanted(5) {
        match (
            std::env::var("BENCH_MONGODB_URI"),
            std::env::var("BENCH_REDIS_URL"),
        ) {
            (Ok(mongo), Ok(redis)) => {
                let subscribers = if args.full { 500 } else { 200 };
                eprintln!("scenario 5: two instances over Redis, {subscribers} subscribers on the other one");
                rows.extend(
                    scenarios::cross_instance::run(&server::binary(), &mongo, &redis, subscribers)
                        .await,
                );
            }
            _ => eprintln!("scenario 5 skipped: BENCH_MONGODB_URI and BENCH_REDIS_URL are not both set (scripts/bench.sh sets them)"),
        }
    }
    if wanted(6) {
        let sizes: &[usize] = if args.full {
            &[1_000, 100_000, 1_000_000]
        } else {
            &[1_000, 10_000, 100_000]
        };
        eprintln!("scenario 6: opening rooms of {sizes:?} events");
        rows.extend(scenarios::room_open::run(&server::binary(), sizes).await);
        match std::env::var_os("BENCH_WEB_BENCH") {
            Some(web_bench) => {
                eprintln!("scenario 6 in headless Chromium: navigation to the newest messages painted");
                rows.extend(scenarios::room_open::in_browser(web_bench.as_ref(), sizes).await);
            }
            None => eprintln!("scenario 6's browser half skipped: BENCH_WEB_BENCH is not set (scripts/bench.sh sets it)"),
        }
    }
    if wanted(7) {
        let sockets = if args.full { 10_000 } else { 2_000 };
        eprintln!("scenario 7: {sockets} idle WebSockets");
        rows.extend(scenarios::idle::run(&server::binary(), sockets).await);
    }
    if wanted(9) {
        eprintln!("scenario 9: growth of one room and of the number of rooms");
        rows.extend(scenarios::growth::run(&server::binary(), args.full).await);
    }
    let report = Report {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        mode: if args.full { "full" } else { "short" },
        rows,
    };
    println!("{}", report.markdown());
    if !args.dry_run {
        if let Some(dir) = args.json.parent() {
            std::fs::create_dir_all(dir).expect("the JSON's directory");
        }
        report
            .write(&args.json, &args.benchmarks)
            .expect("the results are written");
        eprintln!(
            "written: {} and {}",
            args.json.display(),
            args.benchmarks.display()
        );
    }
}
