#[test]
fn fz() {
    let mut v: Vec<_> = std::fs::read_dir("/tmp/cfgwork/tabs").unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    for p in v {
        let r = memshard_config::Config::load(&p);
        println!(
            "{:<50} {}",
            p.display(),
            match r {
                Ok(_) => "ok".into(),
                Err(e) => e.to_string(),
            }
        );
    }
}
