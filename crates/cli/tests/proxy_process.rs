//! `memshard proxy` as a user runs it: `-t -c FILE` passes a good file and
//! rejects a bad one with its line and reason and exit code 2; nutcracker's
//! flags; as a daemon, SIGHUP reloads the file and SIGTERM stops it cleanly.

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

/// nutcracker's whole command line is accepted: -V, -D, -m, and -d with -p.
#[test]
fn nutcracker_flags_version_describe_and_mbuf_size() {
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_memshard")).args(args).output().expect("run memshard");
    let out = run(&["proxy", "-V"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("This is memshard-proxy-"));
    let out = run(&["proxy", "-D"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.contains("pool stats:\n  client_eof          \"# eof on client connections\""), "{text}");
    assert!(text.contains("server stats:\n"), "{text}");
    let out = run(&["proxy", "-m", "100", "-t"]);
    assert_eq!(out.status.code(), Some(2), "an mbuf size below nutcracker's 512 is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("mbuf"));
}

#[test]
fn daemonizes_writes_its_pid_file_and_removes_it_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("memshard-proxy-d-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (conf, pid_file, log) = (dir.join("nutcracker.yml"), dir.join("proxy.pid"), dir.join("proxy.log"));
    std::fs::write(&conf, "pool:\n  listen: 127.0.0.1:0\n  servers:\n   - 127.0.0.1:1:1\n").expect("write conf");
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_memshard"))
        .args(["proxy", "-d", "-m", "16384", "-s", "0", "-a", "127.0.0.1", "-c"])
        .arg(&conf)
        .arg("-p")
        .arg(&pid_file)
        .arg("-o")
        .arg(&log)
        .output()
        .expect("run memshard");
    // The command itself returns at once, the daemon goes on.
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let wait = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    wait("the pid file is written", &|| std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n')));
    let pid: u32 = std::fs::read_to_string(&pid_file).expect("pid").trim().parse().expect("a pid");
    assert_ne!(pid, std::process::id());
    // Should an assertion below fail, the daemon is not left behind.
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = Command::new("kill").arg("-KILL").arg(self.0.to_string()).status();
        }
    }
    let _guard = KillOnDrop(pid);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "the daemon runs");
    // It serves: its log names the pool's port, and it answers there.
    wait("the daemon logs its listener", &|| {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("role=\"proxy\"") && l.contains("listening on"))
    });
    let text = std::fs::read_to_string(&log).expect("log");
    let addr: std::net::SocketAddr = text
        .lines()
        .filter(|l| l.contains("role=\"proxy\"") && !l.contains("proxy-stats"))
        .find_map(|l| l.split("listening on ").nth(1)?.split_whitespace().next()?.parse().ok())
        .expect("the pool's address in the log");
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the daemon");
    use std::io::{Read, Write};
    s.write_all(b"version\r\n").expect("write");
    let mut buf = [0u8; 128];
    let n = s.read(&mut buf).expect("read");
    assert!(buf[..n].starts_with(b"VERSION "), "{:?}", String::from_utf8_lossy(&buf[..n]));
    // SIGHUP reloads the file: a bad one is refused with its line and the
    // pool goes on; a good one is applied (the file is also watched, so
    // either may be seen before the signal; the log says which it took).
    let log_has = |what: &str| std::fs::read_to_string(&log).is_ok_and(|l| l.contains(what));
    std::fs::write(&conf, "pool:\n  listen: 127.0.0.1:0\n  timeout: soon\n  servers:\n   - 127.0.0.1:1:1\n")
        .expect("write bad conf");
    let hup = || assert!(Command::new("kill").arg("-HUP").arg(pid.to_string()).status().expect("kill").success());
    hup();
    wait("the bad file is refused", &|| log_has("reload refused") && log_has("nutcracker.yml:3:"));
    s.write_all(b"version\r\n").expect("write after a refused reload");
    let n = s.read(&mut buf).expect("read");
    assert!(buf[..n].starts_with(b"VERSION "), "the client goes on: {:?}", String::from_utf8_lossy(&buf[..n]));
    std::fs::write(&conf, "pool:\n  listen: 127.0.0.1:0\n  servers:\n   - 127.0.0.1:2:1\n").expect("write conf");
    hup();
    wait("the good file is applied", &|| log_has("reload applied"));
    s.write_all(b"version\r\n").expect("write after the reload");
    let n = s.read(&mut buf).expect("read");
    assert!(buf[..n].starts_with(b"VERSION "), "the client goes on: {:?}", String::from_utf8_lossy(&buf[..n]));
    // SIGTERM: a clean exit removes the pid file.
    let killed = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().expect("kill");
    assert!(killed.success());
    wait("the pid file is removed", &|| !pid_file.exists());
    wait("the daemon exited", &|| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    });
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--admin 127.0.0.1:0`: the admin port logs its address as every listener
/// does and serves metrics and probes; a malformed address exits 2.
#[test]
fn the_admin_port_listens_where_asked_and_a_bad_address_exits_two() {
    let dir = std::env::temp_dir().join(format!("memshard-proxy-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("nutcracker.yml");
    std::fs::write(&file, "alpha:\n  listen: 127.0.0.1:0\n  servers:\n   - 127.0.0.1:1:1\n").expect("write");
    let conf = file.to_str().expect("utf-8 path");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_memshard"));
    let args = ["proxy", "-c", conf, "-s", "0", "-a", "127.0.0.1", "--admin", "127.0.0.1:0"];
    let mut proxy = memshard_testkit::spawn_role(bin, &args, 3).expect("pool, stats and admin listening");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let admins: Vec<_> = proxy
        .addrs
        .iter()
        .filter(|a| rt.block_on(memshard_testkit::http::get(**a, "/healthz")).is_ok_and(|r| r.body.contains("\"ok\"")))
        .copied()
        .collect();
    assert_eq!(admins.len(), 1, "one of {:?} is the admin port", proxy.addrs);
    let metrics = rt.block_on(memshard_testkit::http::get(admins[0], "/metrics")).expect("metrics");
    assert!(metrics.body.contains("memshard_proxy_server_state{pool=\"alpha\",server=\"127.0.0.1:1\""), "{metrics:?}");
    assert_eq!(proxy.stop().expect("stop"), Some(0));

    let out = Command::new(bin).args(["proxy", "-c", conf, "--admin", "9151"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not HOST:PORT"), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
