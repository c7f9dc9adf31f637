//! `memshard proxy -t -c FILE` as a user runs it: a good file passes, a bad
//! one is rejected with its line and reason and exit code 2.

use std::process::Command;

fn check(yaml: &str) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("memshard-proxy-t-{}-{}", std::process::id(), yaml.len()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("nutcracker.yml");
    std::fs::write(&file, yaml).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_memshard"))
        .args(["proxy", "-t", "-c"])
        .arg(&file)
        .output()
        .expect("run memshard");
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn the_systems_own_config_is_valid() {
    let (code, text) = check(
        "memcached:\n  listen: 0.0.0.0:11211\n  hash: fnv1a_64\n  distribution: ketama\n  auto_eject_hosts: true\n  \
         timeout: 400\n  server_retry_timeout: 2000\n  server_failure_limit: 1\n  servers:\n   - \
         sharded-memcache-0.memcache:11211:1\n   - sharded-memcache-1.memcache:11211:1\n   - \
         sharded-memcache-2.memcache:11211:1\n",
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("syntax is ok"), "{text}");
}

#[test]
fn a_bad_file_names_line_and_reason_and_exits_two() {
    let (code, text) =
        check("pool:\n  listen: 127.0.0.1:22121\n  timeout: 400\n  timeout: 500\n  servers:\n   - 127.0.0.1:11211:1\n");
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains(":4:") && text.contains("duplicate"), "{text}");
    let (code, text) = check("pool:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n");
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("redis"), "{text}");
}
