//! What a benchmark reads off a run: latency percentiles, and the CPU time
//! and peak memory of a process (this one, or the server it started), from
//! Linux's `/proc`.

use std::time::Duration;

/// p50, p99 and max of some latencies, in milliseconds.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(mut all: Vec<Duration>) -> Latency {
        if all.is_empty() {
            return Latency::default();
        }
        all.sort_unstable();
        let at = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Latency {
            p50_ms: ms(at(0.50)),
            p99_ms: ms(at(0.99)),
            max_ms: ms(*all.last().expect("not empty")),
        }
    }
}

/// "12,000 events/s; p50 1.2 ms, p99 3.4 ms".
pub fn rate_and_latency(events_per_s: f64, l: &Latency) -> String {
    format!(
        "{} events/s; p50 {:.1} ms, p99 {:.1} ms",
        crate::report::thousands(events_per_s),
        l.p50_ms,
        l.p99_ms
    )
}

/// CPU time (user + system) a process has used so far.
pub fn cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line (11 and 12 here).
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // Linux reports them in USER_HZ, 100 a second.
    Duration::from_millis(ticks * 10)
}

/// A process's peak resident memory so far (VmHWM), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
}

/// A process's resident memory now (VmRSS), in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time and wall time of two processes (the server, and this load
/// generator) over a stretch of a run.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Usage {
    pub wall_s: f64,
    pub server_cpu_s: f64,
    pub generator_cpu_s: f64,
    pub server_peak_rss_mib: f64,
    pub generator_peak_rss_mib: f64,
}

impl Usage {
    /// Whether the load generator may have been the bottleneck: it used
    /// most of a core, or more CPU than the server (they share 2 cores).
    pub fn generator_bound(&self) -> bool {
        self.generator_cpu_s > 0.8 * self.wall_s || self.generator_cpu_s > self.server_cpu_s
    }
}

/// Measures [`Usage`] from now until [`Meter::stop`].
pub struct Meter {
    server: u32,
    started: std::time::Instant,
    server_cpu: Duration,
    own_cpu: Duration,
}

impl Meter {
    pub fn start(server: u32) -> Meter {
        Meter {
            server,
            started: std::time::Instant::now(),
            server_cpu: cpu_time(server),
            own_cpu: cpu_time(std::process::id()),
        }
    }

    pub fn stop(self) -> Usage {
        let me = std::process::id();
        Usage {
            wall_s: self.started.elapsed().as_secs_f64(),
            server_cpu_s: (cpu_time(self.server).saturating_sub(self.server_cpu)).as_secs_f64(),
            generator_cpu_s: (cpu_time(me).saturating_sub(self.own_cpu)).as_secs_f64(),
            server_peak_rss_mib: peak_rss_kib(self.server) as f64 / 1024.0,
            generator_peak_rss_mib: peak_rss_kib(me) as f64 / 1024.0,
        }
    }
}
