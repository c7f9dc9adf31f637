//! Tables of accepted and refused files, checked against memshard and,
//! when it is installed, against nutcracker 0.5.0 itself (`nutcracker -t`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use memshard_config::{Config, ErrorKind};

mod cases;

use cases::Peer::{Agrees, Differs};
use cases::{BAD, GOOD};

#[test]
fn good_files_load() {
    for case in GOOD {
        if let Err(e) = Config::from_yaml(case.yaml) {
            panic!("{}: refused: {e}", case.name);
        }
    }
}

#[test]
fn bad_files_are_refused_with_line_and_reason() {
    assert!(BAD.len() >= 30);
    for case in BAD {
        let e = match Config::from_yaml(case.yaml) {
            Ok(_) => panic!("{}: accepted", case.name),
            Err(e) => e,
        };
        assert_eq!(e.line(), case.line, "{}: wrong line in {e}", case.name);
        assert!(e.reason().contains(case.reason), "{}: {e:?} lacks {:?}", case.name, case.reason);
        assert_eq!(e.to_string(), format!("line {}: {}", case.line, e.reason()));
        // Only memshard's deliberate refusals may be of kind Unsupported,
        // and they are all rows where nutcracker disagrees.
        if e.kind() == ErrorKind::Unsupported {
            assert!(matches!(case.peer, Differs(_)), "{}: Unsupported but nutcracker agrees", case.name);
        }
    }
}

#[test]
fn names_are_unique() {
    let mut names: Vec<&str> = GOOD.iter().map(|c| c.name).chain(BAD.iter().map(|c| c.name)).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "two rows share a name");
}

/// The nutcracker binary, if installed.
fn nutcracker() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nutcracker")).collect::<Vec<_>>())
        .unwrap_or_default();
    let fixed = ["/usr/sbin/nutcracker", "/usr/local/sbin/nutcracker", "/usr/bin/nutcracker"].map(PathBuf::from);
    from_path.into_iter().chain(fixed).find(|p| p.is_file())
}

/// `nutcracker -t -c FILE`: true for "syntax is ok".
fn nutcracker_accepts(bin: &Path, file: &Path) -> bool {
    let out = Command::new(bin).arg("-t").arg("-c").arg(file).output().expect("run nutcracker -t");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let ok = text.contains("syntax is ok");
    assert_eq!(ok, out.status.success(), "nutcracker's exit status and message disagree: {text}");
    assert!(ok || text.contains("syntax is invalid"), "unexpected nutcracker output: {text}");
    ok
}

/// The reason nutcracker logs for a file `nutcracker -t` has just refused:
/// its first `conf:` log line, or "" when it logs none (an empty scalar).
///
/// Run only on refused files: nutcracker then exits while loading, before
/// it binds anything. The wait is bounded all the same.
fn nutcracker_reason(bin: &Path, file: &Path) -> String {
    let log = file.with_extension("log");
    let mut child = Command::new(bin)
        .arg("-c")
        .arg(file)
        .arg("-o")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run nutcracker");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait for nutcracker").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nutcracker kept running on {}, which `nutcracker -t` refused", file.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    // Lines look like "[date time] nc_conf.c:894 conf: document start ...".
    let reason = text.lines().find_map(|l| {
        let at = l.find(" conf: ").or_else(|| l.find(" address resolution"))?;
        Some(l[at + 1..].to_owned())
    });
    reason.unwrap_or_default()
}

/// The stage of `conf_create` that logged `reason`, in this crate's terms.
fn stage_of(reason: &str) -> ErrorKind {
    let has = |s: &str| reason.contains(s);
    if has("to get the next yaml document") || has("must contain only 1 document") {
        ErrorKind::Yaml
    } else if has(" token (") {
        ErrorKind::Token
    } else if has("depth") || has("sequence directive") {
        ErrorKind::Structure
    } else if has("is missing")
        || has("cannot be 0")
        || has("only valid for a redis pool")
        || has("has no servers")
        || has("same name")
        || has("same listen address")
    {
        ErrorKind::Validation
    } else {
        // A handler's message, a failed listen resolution, or silence: an
        // empty scalar refused by conf_push_scalar.
        ErrorKind::Directive
    }
}

#[test]
fn nutcracker_agrees() {
    let Some(bin) = nutcracker() else {
        assert!(
            std::env::var("MEMSHARD_REQUIRE_PEERS").as_deref() != Ok("1"),
            "MEMSHARD_REQUIRE_PEERS=1 but nutcracker is not installed (apt-get install nutcracker)"
        );
        eprintln!("SKIPPED: nutcracker_agrees: nutcracker is not installed");
        return;
    };
    let dir = std::env::temp_dir().join(format!("memshard-config-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut mismatches = Vec::new();
    let rows =
        GOOD.iter().map(|c| (c.name, c.yaml, true, c.peer)).chain(BAD.iter().map(|c| (c.name, c.yaml, false, c.peer)));
    for (name, yaml, memshard_accepts, peer) in rows {
        let file = dir.join(format!("{name}.yml"));
        std::fs::write(&file, yaml).expect("write case");
        let (expected, why) = match peer {
            Agrees => (memshard_accepts, "the row says nutcracker agrees"),
            Differs(why) => (!memshard_accepts, why),
        };
        let actual = nutcracker_accepts(&bin, &file);
        let verdict = |accepts: bool| if accepts { "accepts" } else { "rejects" };
        if actual != expected {
            mismatches.push(format!(
                "{name}: nutcracker {} it, expected {} ({why})",
                verdict(actual),
                verdict(expected)
            ));
            continue;
        }
        // Both refuse: the first error must come from the same check.
        if !actual && !memshard_accepts {
            let theirs = nutcracker_reason(&bin, &file);
            let ours = Config::from_yaml(yaml).expect_err("a bad row");
            if stage_of(&theirs) != ours.kind() {
                mismatches
                    .push(format!("{name}: nutcracker logs {theirs:?}, memshard says {ours} ({:?})", ours.kind()));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(mismatches.is_empty(), "nutcracker disagrees with the table:\n{}", mismatches.join("\n"));
}
