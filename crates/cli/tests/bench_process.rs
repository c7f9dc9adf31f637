//! `memshard bench` as a user runs it: against a `memshard server` process,
//! closed and open loop, JSON and text output, exit codes for bad flags and
//! unreachable targets.

use memshard_testkit::{RoleProcess, spawn_role};
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A `memshard server` on an ephemeral loopback port, killed on drop.
fn server() -> RoleProcess {
    let args = ["server", "-l", "127.0.0.1", "-p", "0", "-t", "1"];
    spawn_role(Path::new(env!("CARGO_BIN_EXE_memshard")), &args, 1).expect("memshard server starts")
}

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memshard"))
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run memshard bench")
}

fn json_of(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn closed_loop_json_has_every_figure() {
    let s = server();
    let addr = s.addr().to_string();
    let out = bench(&["-s", &addr, "-c", "4", "-P", "4", "-d", "1", "--warmup", "0.2", "-k", "1000", "--json"]);
    let j = json_of(&out);
    for field in
        ["ops_per_sec", "hit_ratio", "p50_us", "p90_us", "p99_us", "p999_us", "p9999_us", "max_us", "mean_us", "errors"]
    {
        assert!(j[field].is_number(), "{field} missing: {j}");
    }
    assert_eq!(j["mode"], "closed");
    assert_eq!(j["errors"], 0);
    assert_eq!(j["hit_ratio"], 1.0, "prefilled: {j}");
    assert!(j["error_kinds"].is_object());
    assert_eq!(j["config"]["mix"], "get=90,set=10");
    assert_eq!(j["config"]["pipeline"], 4);
    // stderr is a pipe here, not a terminal: no progress line.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("ops/s"), "progress on a non-terminal: {stderr}");
}

#[test]
fn open_loop_meta_zipf_with_request_count() {
    let s = server();
    let addr = s.addr().to_string();
    let out = bench(&[
        "-s",
        &addr,
        "-c",
        "4",
        "--rate",
        "1000",
        "--arrivals",
        "poisson",
        "-n",
        "500",
        "--warmup",
        "0",
        "--mix",
        "mg=90,ms=10",
        "--key-dist",
        "zipf:0.99",
        "-v",
        "100-1000",
        "-k",
        "1000",
        "--json",
    ]);
    let j = json_of(&out);
    assert_eq!(j["mode"], "open");
    assert_eq!(j["latency_from"], "schedule");
    assert_eq!(j["target_rate"], 1000.0);
    assert_eq!(j["ops"], 500, "{j}");
    assert!(j["send_lag_p99_us"].is_number(), "{j}");
    assert_eq!(
        (j["config"]["key_dist"].as_str(), j["config"]["value_size"].as_str()),
        (Some("zipf:0.99"), Some("100-1000"))
    );
    assert_eq!(j["config"]["arrivals"], "poisson");
}

#[test]
fn text_report_names_the_percentiles() {
    let s = server();
    let addr = s.addr().to_string();
    let out = bench(&["-s", &addr, "-c", "2", "-d", "0.5", "--warmup", "0", "-k", "100", "--multiget", "3", "-q"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for word in ["closed loop", "throughput", "p99.9", "p99.99", "max", "hits", "3 keys per get"] {
        assert!(text.contains(word), "no {word:?} in {text}");
    }
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        &["--mix", "foo=1"][..],
        &["--value-size", "10-5"],
        &["--key-dist", "zipf:0"],
        &["--arrivals", "poisson"],
        &["--mix", "get=1", "--get-ratio", "0.5"],
        &["--mix", "mg=1", "--multiget", "2"],
        &["--rate", "0"],
        &["--get-ratio", "2"],
        &["-c", "0"],
    ] {
        let out = bench(&[&["-s", "127.0.0.1:1", "-d", "1"][..], args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn unreachable_target_exits_1() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = bench(&["-s", &format!("127.0.0.1:{port}"), "-c", "2", "-d", "1", "-q"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}
