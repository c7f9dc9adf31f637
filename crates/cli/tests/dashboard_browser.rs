//! The admin dashboard as a person sees it: the real `memshard up`, load put
//! on its proxy by this test (a hot key among a few hundred others), and
//! headless Chromium (a peer: skipped loudly when missing, a failure under
//! `MEMSHARD_REQUIRE_PEERS=1`) visiting `http://DASHBOARD/` for a few real
//! seconds, then dumping the DOM the page's script drew and a screenshot.
//! `--virtual-time-budget` is not used: it fast-forwards the one-second
//! polls, and with slow fetches Chromium 1xx at times never finishes. Instead
//! the page is loaded through a relay in this test that holds back only its
//! closing `</body></html>`, so the document is still loading when
//! `--timeout` ends the visit after [`PAGE_MS`] of real time.
//! The screenshot goes to the test's temp dir, or to the path in
//! `MEMSHARD_DASHBOARD_SCREENSHOT` (relative paths are from the workspace
//! root), which is how docs/dashboard.png is made; the page then runs for
//! [`DOCS_PAGE_MS`], so that the requests/s chart has a few points:
//!
//! ```text
//! MEMSHARD_DASHBOARD_SCREENSHOT=docs/dashboard.png cargo test -p memshard --test dashboard_browser
//! ```

use memshard_client::Client;
use memshard_testkit::{ChildGuard, peer_or_skip};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Where the screenshot goes instead of the temp dir, when set.
const SCREENSHOT_ENV: &str = "MEMSHARD_DASHBOARD_SCREENSHOT";
/// How long Chromium shows the page (`--timeout`): about five polls.
const PAGE_MS: u32 = 5000;
/// The same when making docs/dashboard.png.
const DOCS_PAGE_MS: u32 = 15_000;
/// Chromium must have exited by then, or it is killed and the test fails.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);
/// The load stops by then even if the test is still running (it stops when
/// Chromium is done, well before).
const LOAD_LIMIT: Duration = Duration::from_secs(30);
/// And each load task stops after this many requests.
const MAX_OPS_PER_TASK: u64 = 1_000_000;
const LOAD_TASKS: u64 = 3;
const HOT_KEY: &str = "dashboard:hot";
const WINDOW: (u32, u32) = (1280, 1000);

/// Progress for `--nocapture` readers: the command line, timings, paths.
#[allow(clippy::print_stderr)]
fn note(msg: &str) {
    eprintln!("dashboard_browser: {msg}");
}

/// A folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("memshard-dashboard-browser-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Pseudo-random keys: keys that differ only in a short counter cluster on
/// one or two shards under fnv1a_64 (see up_process.rs).
fn keys(n: usize) -> Vec<String> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            format!("dashboard:{x:016x}")
        })
        .collect()
}

/// One load task: a quarter of its requests get the hot key, the rest get
/// (four in five) or set (one in five) a random key. Bounded by `stop`,
/// [`LOAD_LIMIT`] and [`MAX_OPS_PER_TASK`]; returns the requests made.
async fn load(
    proxy: SocketAddr,
    seed: u64,
    keys: Arc<Vec<String>>,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
) -> Result<u64, String> {
    let client = Client::connect(proxy).await.map_err(|e| format!("connect to the proxy: {e}"))?;
    let start = Instant::now();
    let mut x = seed;
    let mut done = 0;
    while !stop.load(Ordering::Relaxed) && start.elapsed() < LOAD_LIMIT && done < MAX_OPS_PER_TASK {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let r = (x >> 33) as usize;
        let key = if r % 4 == 0 { HOT_KEY } else { keys[r / 4 % keys.len()].as_str() };
        if r % 5 == 0 {
            client.set(key, b"value", 0, 0).await.map_err(|e| format!("set {key}: {e}"))?;
        } else {
            client.get(key).await.map_err(|e| format!("get {key}: {e}"))?;
        }
        done += 1;
        ops.fetch_add(1, Ordering::Relaxed);
    }
    Ok(done)
}

/// An HTTP relay to the admin port that passes every exchange through
/// unchanged, except that it holds back the end of the page (whatever
/// follows its last `</script>`: `</body></html>`) until the browser hangs
/// up. The page's script has arrived and runs, but the document never
/// finishes loading, so Chromium's `--timeout` (real time) is what ends the
/// visit. Records each request line with the time it arrived.
async fn relay(upstream: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<(Instant, String)>>>, JoinSet<()>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind relay");
    let addr = listener.local_addr().expect("relay address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = JoinSet::new();
    let log = Arc::clone(&seen);
    tasks.spawn(async move {
        // Dropping this set (when the accept task is aborted) aborts every
        // connection's task with it.
        let mut conns = JoinSet::new();
        while let Ok((client, _)) = listener.accept().await {
            conns.spawn(relay_one(client, upstream, Arc::clone(&log)));
        }
    });
    (addr, seen, tasks)
}

/// One request and its answer (the admin server closes every connection
/// after one answer). Every step is bounded in time.
async fn relay_one(mut client: TcpStream, upstream: SocketAddr, log: Arc<Mutex<Vec<(Instant, String)>>>) {
    const STEP: Duration = Duration::from_secs(10);
    let (mut request, mut buf) = (Vec::new(), vec![0u8; 16 * 1024]);
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 * 1024 {
        // A browser's speculative connection may never send anything.
        match tokio::time::timeout(STEP, client.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => request.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    let line = String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_owned();
    log.lock().expect("relay log").push((Instant::now(), line.clone()));
    let Ok(Ok(mut server)) = tokio::time::timeout(STEP, TcpStream::connect(upstream)).await else { return };
    if server.write_all(&request).await.is_err() {
        return;
    }
    let mut response = Vec::new();
    // The answer ends when the admin server closes (`connection: close`).
    let _ = tokio::time::timeout(STEP, server.read_to_end(&mut response)).await;
    let marker = b"</script>";
    let cut = line
        .starts_with("GET / ")
        .then(|| response.windows(marker.len()).rposition(|w| w == marker))
        .flatten()
        .map(|at| at + marker.len());
    if let Some(cut) = cut {
        if client.write_all(&response[..cut]).await.is_err() {
            return;
        }
        // Until Chromium gives up on the page, at most as long as Chromium
        // may run at all.
        let _ = tokio::time::timeout(CHROMIUM_TIMEOUT, client.read(&mut buf)).await;
        let _ = client.write_all(&response[cut..]).await;
    } else {
        let _ = client.write_all(&response).await;
    }
    let _ = client.shutdown().await;
}

/// Runs Chromium on `url` with a DOM dump to `dir/dom.html` and a screenshot
/// to `shot`, waiting at most [`CHROMIUM_TIMEOUT`]; returns the exit status,
/// the DOM, Chromium's stderr and how long it ran.
fn run_chromium(
    bin: &Path,
    url: &str,
    dir: &Path,
    shot: &Path,
    page_ms: u32,
) -> (ExitStatus, String, String, Duration) {
    let (dom_path, err_path) = (dir.join("dom.html"), dir.join("chromium.stderr"));
    let args = chromium_args(url, &dir.join("profile"), shot, page_ms);
    note(&format!("running: {} {}", bin.display(), args.join(" ")));
    let child = Command::new(bin)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&dom_path).expect("create dom.html"))
        .stderr(std::fs::File::create(&err_path).expect("create chromium.stderr"))
        .spawn()
        .expect("start chromium");
    let mut chromium = ChildGuard::new(child);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = chromium.child_mut().try_wait().expect("wait for chromium") {
            break status;
        }
        if start.elapsed() > CHROMIUM_TIMEOUT {
            chromium.kill();
            let err = std::fs::read_to_string(&err_path).unwrap_or_default();
            panic!("chromium (pid {}) did not exit within {CHROMIUM_TIMEOUT:?}; stderr:\n{err}", chromium.id());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = start.elapsed();
    let dom = std::fs::read_to_string(&dom_path).expect("read dom.html");
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    (status, dom, err, took)
}

fn chromium_args(url: &str, profile: &Path, shot: &Path, page_ms: u32) -> Vec<String> {
    [
        // The new headless mode from Chromium 132 on, the old one before;
        // both know --dump-dom, --screenshot and --timeout.
        "--headless",
        // Root in a container has no usable sandbox.
        "--no-sandbox",
        "--disable-gpu",
        // Docker's /dev/shm is 64 MiB, too small for Chromium.
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        format!("--user-data-dir={}", profile.display()),
        format!("--window-size={},{}", WINDOW.0, WINDOW.1),
        // Ends the visit after page_ms of real time (the relay keeps the
        // page from finishing its load before).
        format!("--timeout={page_ms}"),
        format!("--screenshot={}", shot.display()),
        "--dump-dom".to_owned(),
        url.to_owned(),
    ])
    .collect()
}

/// The class names of the element whose start tag begins at `tag`.
fn classes(tag: &str) -> Vec<&str> {
    let end = tag.find('>').unwrap_or(tag.len());
    tag[..end]
        .split_once("class=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(c, _)| c.split_whitespace().collect())
        .unwrap_or_default()
}

/// The text inside each `<{tag} class="... class ...">…</{tag}>`, tags removed.
fn elements(html: &str, tag: &str, class: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag} "), format!("</{tag}>"));
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(&open) {
        rest = &rest[at..];
        let inner_start = rest.find('>').map_or(rest.len(), |i| i + 1);
        let inner_end = rest.find(&close).unwrap_or(rest.len()).max(inner_start);
        if classes(rest).contains(&class) {
            found.push(rest[inner_start..inner_end].to_owned());
        }
        rest = &rest[inner_start..];
    }
    found
}

/// `html` with its tags removed and its whitespace trimmed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// The text of the element with `id="{id}"`.
fn by_id(dom: &str, id: &str) -> String {
    let at = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in the DOM:\n{dom}"));
    let rest = &dom[at..];
    let start = rest.find('>').map_or(rest.len(), |i| i + 1);
    let end = rest[start..].find('<').map_or(rest.len(), |i| start + i);
    text(&rest[start..end])
}

/// Text cells of class `class` in each row.
fn cells(rows: &[String], class: &str) -> Vec<String> {
    rows.iter().flat_map(|r| elements(r, "td", class)).map(|c| text(&c)).collect()
}

/// `"12.5 %"` as 12.5.
fn percent(s: &str) -> Option<f64> {
    s.strip_suffix(" %").and_then(|n| n.parse().ok())
}

/// Checks the PNG signature and returns width and height from its IHDR.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n") && &png[12..16] == b"IHDR", "not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

/// Where `MEMSHARD_DASHBOARD_SCREENSHOT` asks for the screenshot, if set.
fn docs_screenshot() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os(SCREENSHOT_ENV).filter(|p| !p.is_empty())?);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Some(if path.is_absolute() { path } else { root.join(path) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_live_data_on_the_dashboard() {
    let Some(chromium) = peer_or_skip("chromium") else { return };
    let test_start = Instant::now();
    let temp = TempDir::new();
    let shot = temp.0.join("dashboard.png");
    let docs = docs_screenshot();
    let page_ms = if docs.is_some() { DOCS_PAGE_MS } else { PAGE_MS };

    let up = memshard_testkit::spawn_up(Path::new(env!("CARGO_BIN_EXE_memshard")), &[]);
    assert_eq!(up.shards.len(), 3, "three shards by default");

    // Load for the whole test: two thirds of the keys are stored first, so
    // the hit ratio is neither 0 nor 100 %.
    let keys = Arc::new(keys(600));
    let preload = Client::connect(up.proxy).await.expect("connect to the proxy");
    for key in &keys[..400] {
        preload.set(key, b"value", 0, 0).await.expect("preload");
    }
    let (stop, ops) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let mut load_tasks = JoinSet::new();
    for seed in 0..LOAD_TASKS {
        load_tasks.spawn(load(up.proxy, seed * 7919 + 1, Arc::clone(&keys), Arc::clone(&stop), Arc::clone(&ops)));
    }
    let wait = Instant::now();
    while ops.load(Ordering::Relaxed) < 100 {
        assert!(wait.elapsed() < Duration::from_secs(10), "the load did not get going within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (relay_addr, seen, relay_tasks) = relay(up.dashboard).await;
    let url = format!("http://{relay_addr}/");
    let dir = temp.0.clone();
    let shot_for_run = shot.clone();
    let (status, dom, err, took) =
        tokio::task::spawn_blocking(move || run_chromium(&chromium, &url, &dir, &shot_for_run, page_ms))
            .await
            .expect("chromium runner");
    stop.store(true, Ordering::Relaxed);
    drop(relay_tasks);
    let mut total_ops = 0;
    while let Some(done) = load_tasks.join_next().await {
        total_ops += done.expect("load task").unwrap_or_else(|e| panic!("load failed: {e}"));
    }
    note(&format!("chromium ran {took:.1?} ({status}); {total_ops} requests of load; {} bytes of DOM", dom.len()));
    assert!(status.success(), "chromium failed: {status}; stderr:\n{err}");

    // The page really ran: polls a second apart over several real seconds.
    let polls: Vec<Instant> = seen
        .lock()
        .expect("relay log")
        .iter()
        .filter(|(_, line)| line.starts_with("GET /summary.json"))
        .map(|(t, _)| *t)
        .collect();
    assert!(polls.len() >= 3, "only {} polls of summary.json reached the server", polls.len());
    let span = polls[polls.len() - 1] - polls[0];
    assert!(span >= Duration::from_secs(2), "{} polls within {span:?}: the page did not run in real time", polls.len());
    note(&format!("{} polls of summary.json over {span:.1?}", polls.len()));

    // What the page drew.
    assert!(dom.contains("<body data-ready=\"1\">"), "the page did not draw two polls:\n{dom}");
    let servers = elements(&dom, "tr", "server");
    assert_eq!(servers.len(), 3, "three server rows:\n{dom}");
    let mut names = cells(&servers, "name");
    names.sort();
    let mut shards: Vec<String> = up.shards.iter().map(ToString::to_string).collect();
    shards.sort();
    assert_eq!(names, shards, "the rows name the three shards");
    assert_eq!(cells(&servers, "state"), ["up", "up", "up"]);
    let rps: Vec<f64> = cells(&servers, "rps").iter().filter_map(|r| r.parse().ok()).collect();
    assert!(rps.iter().any(|r| *r > 0.0), "no server shows requests/s > 0: {rps:?}");
    let total_rps: f64 = by_id(&dom, "total-rps").parse().unwrap_or(0.0);
    assert!(total_rps > 0.0, "total requests/s: {}", by_id(&dom, "total-rps"));
    let hit = by_id(&dom, "total-hit");
    assert!(percent(&hit).is_some_and(|h| (0.0..=100.0).contains(&h)), "hit ratio {hit:?}");
    assert!(cells(&servers, "hit").iter().any(|h| percent(h).is_some()), "no server hit ratio in %");
    let p99 = by_id(&dom, "total-p99");
    assert!(p99.starts_with("≤ ") && p99.ends_with('s'), "p99 {p99:?}");
    assert!(cells(&servers, "errors").iter().all(|e| e == "0"), "errors: {:?}", cells(&servers, "errors"));
    let shares: Vec<f64> = cells(&servers, "share").iter().filter_map(|s| percent(s)).collect();
    assert_eq!(shares.len(), 3, "ring shares");
    assert!((shares.iter().sum::<f64>() - 100.0).abs() < 0.5, "ring shares add up to 100 %: {shares:?}");
    let hot = cells(&elements(&dom, "table", "hotkeys"), "key");
    assert!(hot.iter().any(|k| k == HOT_KEY), "{HOT_KEY} not among the hot keys {hot:?}");
    assert_eq!(elements(&dom, "tr", "hotkey").len(), hot.len());
    assert_eq!(by_id(&dom, "total-ejected"), "0");
    assert_eq!(by_id(&dom, "error"), "", "the page reported an error");

    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", shot.display()));
    assert_eq!(png_size(&png), WINDOW, "screenshot size");
    assert!(png.len() > 20_000, "a {}-byte screenshot is too plain to show the tables", png.len());
    // Only a passing run replaces the picture in the docs.
    let shot = match docs {
        Some(docs) => {
            std::fs::write(&docs, &png).unwrap_or_else(|e| panic!("write {}: {e}", docs.display()));
            docs
        }
        None => shot,
    };
    note(&format!("screenshot: {} ({} bytes); test took {:.1?}", shot.display(), png.len(), test_start.elapsed()));
}
