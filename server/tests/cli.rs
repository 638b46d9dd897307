//! The server binary's command line: `--help` lists every setting with its
//! environment variable, a bad value exits with 2 and names the variable,
//! and an empty variable counts as unset.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Every setting's environment variable.
const VARS: [&str; 20] = [
    "BIND",
    "DATA_DIR",
    "MONGODB_URI",
    "MONGODB_DB",
    "REDIS_URL",
    "STATIC_DIR",
    "RATE_LIMIT_PER_USER",
    "SESSION_TTL",
    "SNAPSHOT_EVERY",
    "ROOMS_IN_MEMORY",
    "ROOMS_MEMORY_MIB",
    "STORE_CACHE_MIB",
    "WS_PING_INTERVAL",
    "SIGN_UPS_PER_MINUTE",
    "SIGN_INS_PER_MINUTE",
    "TRUSTED_PROXIES",
    "MAX_CONNECTIONS",
    "CLIENT_TIMEOUT",
    "LOG_FORMAT",
    "RUST_LOG",
];

/// The server binary with none of the settings' variables of this process.
fn server() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_server"));
    for v in VARS {
        c.env_remove(v);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Waits for a process that should end by itself; kills it after 20 s.
fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the server kept running: {:?}", child.wait_with_output());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn help_lists_every_variable() {
    let out = finish(server().arg("--help").spawn().unwrap());
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Usage: server [OPTIONS] [COMMAND]"), "{help}");
    assert!(help.contains("serve"), "{help}");
    for v in VARS {
        assert!(
            help.contains(&format!("[env: {v}")),
            "{v} missing in\n{help}"
        );
    }
}

#[test]
fn a_bad_value_exits_with_2_naming_the_variable() {
    for (var, value) in [
        ("RATE_LIMIT_PER_USER", "abc"),
        ("BIND", "nope"),
        ("SESSION_TTL", "forever"),
        ("SNAPSHOT_EVERY", "0"),
        ("ROOMS_IN_MEMORY", "-3"),
        ("TRUSTED_PROXIES", "proxy.local"),
        ("MAX_CONNECTIONS", "0"),
        ("CLIENT_TIMEOUT", "0s"),
        ("LOG_FORMAT", "xml"),
        ("RUST_LOG", "server=loud"),
    ] {
        let out = finish(server().env(var, value).spawn().unwrap());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{var}={value}: {stderr}");
        assert!(stderr.contains(value), "{var}={value}: {stderr}");
    }
}

#[test]
fn empty_variables_count_as_unset() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = server();
    for v in VARS {
        cmd.env(v, "");
    }
    // A flag wins over its variable; the variables below are read.
    let mut child = cmd
        .env("DATA_DIR", dir.path())
        .env("LOG_FORMAT", "json")
        .args(["--bind", "127.0.0.1:0"])
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let line = first.unwrap_or_else(|_| {
        panic!(
            "no log line; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let log: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(log["fields"]["message"], "listening", "{line}");
    assert_eq!(log["fields"]["addr"], "127.0.0.1:0");
    assert_eq!(
        log["fields"]["data_dir"].as_str(),
        Some(dir.path().to_str().unwrap())
    );
}
