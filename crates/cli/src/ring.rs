//! `memshard ring`: where keys go under a pool file — every owner of each
//! key, in the order the proxy asks them, when the pool has `replicas` —
//! and how many would move to another server under a second one (the remap
//! cost of a topology change, counted on the first owner).

use crate::{Failure, output};
use anyhow::anyhow;
use clap::Args;
use memshard_config::Config;
use memshard_proxy::{Placement, placement};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Print the servers each key maps to (every owner with `replicas`), or the remap fraction between two configs.
#[derive(Debug, Args)]
pub(crate) struct RingArgs {
    /// twemproxy YAML configuration file.
    #[arg(short = 'c', long = "conf-file")]
    conf_file: PathBuf,
    /// Pool to use (default: the only pool, or the first by name).
    #[arg(short = 'p', long)]
    pool: Option<String>,
    /// A second configuration: report how many sample keys change server.
    #[arg(long = "compare")]
    compare: Option<PathBuf>,
    /// Number of sample keys for --compare.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    samples: usize,
    /// Keys to place.
    keys: Vec<String>,
}

fn load(path: &PathBuf, pool: Option<&str>) -> Result<(String, Placement), Failure> {
    let config = Config::load(path).map_err(|e| Failure::Usage(anyhow!("{e}")))?;
    let (name, cfg) = match pool {
        Some(p) => config
            .pools
            .iter()
            .find(|(n, _)| n == p)
            .ok_or_else(|| Failure::Usage(anyhow!("{}: no pool named {p:?}", path.display())))?,
        None => config.pools.first().ok_or_else(|| Failure::Usage(anyhow!("{}: no pools", path.display())))?,
    };
    if let Some(d) = &cfg.extensions.discovery {
        return Err(Failure::Usage(anyhow!(
            "{}: pool {name} finds its servers in DNS ({d}); give memshard ring a file that lists them \
             (`servers:`, as `- <pod>.<service>:11211:1`)",
            path.display()
        )));
    }
    let placed = placement(name, cfg).map_err(|e| Failure::Usage(e.into()))?;
    Ok((name.clone(), placed))
}

/// The ring names of every owner of `key`, tab-separated, first owner first.
fn owners_of(p: &Placement, key: &[u8]) -> String {
    let names: Vec<String> = p.owners(key).map(|i| p.specs[i].ring_name()).collect();
    names.join("\t")
}

/// The ring name of the server `key` maps to.
fn server_of(p: &Placement, key: &[u8]) -> String {
    p.specs[p.ring.server_for(key)].ring_name()
}

/// Deterministic, well-spread sample keys (a 64-bit LCG, printed in hex).
fn sample_keys(n: usize) -> impl Iterator<Item = String> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n).map(move |_| {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        format!("sample:{x:016x}")
    })
}

pub(crate) fn main(args: RingArgs) -> Result<(), Failure> {
    let (pool, placed) = load(&args.conf_file, args.pool.as_deref())?;
    if let Some(other) = &args.compare {
        if args.samples == 0 {
            return Err(Failure::Usage(anyhow!("--samples must be at least 1")));
        }
        let (_, next) = load(other, Some(&pool)).or_else(|_| load(other, None))?;
        let moved = sample_keys(args.samples)
            .filter(|k| server_of(&placed, k.as_bytes()) != server_of(&next, k.as_bytes()))
            .count();
        let pct = 100.0 * moved as f64 / args.samples as f64;
        return output::emit(&format!("moved {moved} of {} sample keys ({pct:.2}%)\n", args.samples));
    }
    if args.keys.is_empty() {
        return Err(Failure::Usage(anyhow!("give keys to place, or --compare FILE")));
    }
    let mut out = String::new();
    for key in &args.keys {
        let _ = writeln!(out, "{key}\t{}", owners_of(&placed, key.as_bytes()));
    }
    output::emit(&out)
}
