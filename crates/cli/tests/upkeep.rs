//! `cudapkgs upkeep` end to end: a set of the real CUDA runtime from the loopback mirror
//! and local packages in NVIDIA's layout, built by runs of `upkeep run` into a real
//! store, results database, binary cache and log folder. GitHub is the one part that
//! is not real: `GitHubDouble` below is a test double on 127.0.0.1 that records every
//! request and answers as GitHub's REST API does.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::tar::{file, nvidia_archive};
use common::{Server, fixture, mirror, run, run_within, s};
use serde_json::{Value, json};

/// One request the double received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    /// With the query.
    path: String,
    authorization: String,
    body: Value,
}

/// An issue the double keeps.
#[derive(Debug, Clone)]
struct Issue {
    number: u64,
    title: String,
    body: String,
    labels: Vec<String>,
    state: String,
    comments: Vec<String>,
}

/// A test double of GitHub's REST API for issues (GitHub itself is never reached from
/// tests): it keeps issues in memory, lists the open ones by label, creates, comments
/// and closes as `api.github.com` does, and records every request.
struct GitHubDouble {
    port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
    issues: Arc<Mutex<Vec<Issue>>>,
}

impl GitHubDouble {
    fn start() -> GitHubDouble {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let issues = Arc::new(Mutex::new(Vec::new()));
        let (log, state) = (Arc::clone(&requests), Arc::clone(&issues));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&mut stream) else {
                    continue;
                };
                let (status, answer) = answer(&request, &mut state.lock().expect("issues"));
                log.lock().expect("requests").push(request);
                let body = answer.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        GitHubDouble {
            port,
            requests,
            issues,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests since the last call.
    fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.requests.lock().expect("requests"))
    }

    fn issues(&self) -> Vec<Issue> {
        self.issues.lock().expect("issues").clone()
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Recorded> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let (mut length, mut authorization) = (0, String::new());
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "authorization" => value.trim().clone_into(&mut authorization),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        path,
        authorization,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

/// What GitHub answers, for the endpoints upkeep uses.
fn answer(request: &Recorded, issues: &mut Vec<Issue>) -> (&'static str, Value) {
    let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
    let rest = path.strip_prefix("/repos/owner/set/issues");
    let json_of = |issue: &Issue| {
        json!({"number": issue.number, "title": issue.title, "body": issue.body, "state": issue.state,
               "labels": issue.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>()})
    };
    match (request.method.as_str(), rest) {
        ("GET", Some("")) => {
            let label = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("labels="))
                .unwrap_or_default();
            let page = query.contains("page=1");
            let open: Vec<Value> = issues
                .iter()
                .filter(|i| page && i.state == "open" && i.labels.iter().any(|l| l == label))
                .map(json_of)
                .collect();
            ("200 OK", Value::Array(open))
        }
        ("POST", Some("")) => {
            let issue = Issue {
                number: issues.len() as u64 + 1,
                title: request.body["title"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                body: request.body["body"].as_str().unwrap_or_default().to_owned(),
                labels: request.body["labels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect(),
                state: "open".to_owned(),
                comments: Vec::new(),
            };
            let answer = json_of(&issue);
            issues.push(issue);
            ("201 Created", answer)
        }
        (method, Some(rest)) => {
            let (number, comments) = match rest.strip_suffix("/comments") {
                Some(number) => (number, true),
                None => (rest, false),
            };
            let number: Option<u64> = number.trim_start_matches('/').parse().ok();
            let Some(issue) = issues.iter_mut().find(|i| Some(i.number) == number) else {
                return ("404 Not Found", json!({"message": "Not Found"}));
            };
            match (method, comments) {
                ("POST", true) => {
                    let body = request.body["body"].as_str().unwrap_or_default().to_owned();
                    issue.comments.push(body.clone());
                    (
                        "201 Created",
                        json!({"id": issue.comments.len(), "body": body}),
                    )
                }
                ("PATCH", false) => {
                    if let Some(state) = request.body["state"].as_str() {
                        state.clone_into(&mut issue.state);
                    }
                    ("200 OK", json_of(issue))
                }
                _ => ("404 Not Found", json!({"message": "Not Found"})),
            }
        }
        _ => ("404 Not Found", json!({"message": "Not Found"})),
    }
}

/// The loopback mirror, or `None` outside CI without NVIDIA's wheels (said on stderr).
fn the_mirror() -> Option<PathBuf> {
    let found = mirror();
    if found.is_none() {
        eprintln!("skipped: the mirror needs NVIDIA's wheels (scripts/install-nvidia-tools.sh)");
    }
    found
}

/// `dir/NAME-linux-x86_64-1.0-archive.tar.xz` with `lib/NAME.so` made from `fixture`,
/// its needed `libcudart.so.13` replaced by `needs` (kept when `needs` is that).
fn local_package(dir: &Path, name: &str, fixture_name: &str, needs: &str) -> PathBuf {
    let work = dir.join(format!("{name}.so"));
    std::fs::copy(fixture(fixture_name), &work).expect("copy");
    if needs != "libcudart.so.13" {
        let (code, _, stderr) = run(&[
            "patch",
            "--replace-needed",
            "libcudart.so.13",
            needs,
            s(&work),
        ]);
        assert_eq!(code, 0, "{stderr}");
    }
    let bytes = std::fs::read(&work).expect("read");
    let member = format!("{name}/lib/{name}.so");
    nvidia_archive(dir, name, "1.0", &[file(&member, &bytes)])
}

/// A place for a set: its configuration, store, caches and results.
struct Place {
    dir: tempfile::TempDir,
}

impl Place {
    fn new() -> Place {
        Place {
            dir: tempfile::tempdir().expect("temp"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `cudapkgs.toml` with the set's packages and `extra` lines.
    fn configure(&self, base_url: &str, packages: &[&str], extra: &str) -> PathBuf {
        let config = self.path("cudapkgs.toml");
        let packages: Vec<String> = packages.iter().map(|p| format!("{p:?}")).collect();
        std::fs::write(
            &config,
            format!(
                "[upkeep]\npackages = [{}]\nsource = \"nvidia\"\nbase-url = \"{base_url}\"\ncuda = [\"13.0.2\"]\nsystems = [\"linux-x86_64\"]\nresults = \"results.sqlite\"\nlogs = \"logs\"\n{extra}",
                packages.join(", ")
            ),
        )
        .expect("write");
        config
    }

    /// `cudapkgs --config … --json upkeep SUBCOMMAND ARGS` with the place's store and
    /// download cache (for `run`), and `vars` as the whole environment.
    fn upkeep(&self, vars: &[(&str, &str)], args: &[&str]) -> (i32, Value, String) {
        let config = self.path("cudapkgs.toml");
        let (store, state, cache) = (
            self.path("store"),
            self.path("state"),
            self.path("downloads"),
        );
        let mut all = vec!["--config", s(&config), "--json", "upkeep"];
        all.extend_from_slice(args);
        if args.first() == Some(&"run") {
            all.extend([
                "--store-dir",
                s(&store),
                "--state-dir",
                s(&state),
                "--cache",
                s(&cache),
            ]);
        }
        let (code, stdout, stderr) = run_within(Duration::from_secs(900), vars, &all);
        let report = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("not one JSON document ({e}): {stdout}\n{stderr}"));
        (code, report, stderr)
    }
}

/// The run report's results by job.
fn by_job(report: &Value) -> BTreeMap<String, Value> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| (r["job"].as_str().expect("job").to_owned(), r.clone()))
        .collect()
}

const CUDART: &str = "cuda_cudart/cuda-13.0.2/linux-x86_64/any";
const EVIL: &str = "libevil/cuda-13.0.2/linux-x86_64/any";
const GOOD: &str = "libgood/cuda-13.0.2/linux-x86_64/any";

#[test]
fn a_failure_is_filed_once_commented_on_when_it_recurs_and_closed_when_fixed() {
    let Some(mirror) = the_mirror() else { return };
    let server = Server::start(&mirror, &mirror.join("../upkeep-requests.log"), None);
    let github = GitHubDouble::start();
    let place = Place::new();
    let evil = local_package(
        place.dir.path(),
        "libevil",
        "libscale_i.so",
        "libmissing.so.1",
    );
    let good = local_package(
        place.dir.path(),
        "libgood",
        "multiarch.so",
        "libcudart.so.13",
    );
    let (code, _, stderr) = run(&[
        "cache",
        "keygen",
        "upkeep-test-1",
        s(&place.path("cache.sk")),
        s(&place.path("cache.pk")),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let binary_cache = place.path("binary-cache");
    place.configure(
        &server.url(),
        &["cuda_cudart", &format!("libevil={}", evil.display()), "libgood=libgood-linux-x86_64-1.0-archive.tar.xz"],
        &format!("\n[upkeep.cache]\nto = \"file://{}\"\nsecret-key-file = \"cache.sk\"\nprivate = true\n", binary_cache.display()),
    );
    let token = [("GITHUB_TOKEN", "test-token-1")];
    let tracker = ["--github-repo", "owner/set", "--github-api", &github.url()];
    let run_args: Vec<&str> = [&["run"][..], &tracker].concat();

    // Run 1: the runtime and libgood pass and are pushed; libevil fails, one issue.
    let (code, report, stderr) = place.upkeep(&token, &run_args);
    assert_eq!(code, 1, "{stderr}");
    let results = by_job(&report);
    assert_eq!(results.keys().collect::<Vec<_>>(), [CUDART, EVIL, GOOD]);
    assert_eq!(results[CUDART]["outcome"], "passed", "{report}");
    assert_eq!(results[GOOD]["outcome"], "passed", "{report}");
    assert!(results[GOOD]["closure_size"].as_u64().expect("size") > 0);
    assert_eq!(results[EVIL]["outcome"], "failed");
    assert_eq!(results[EVIL]["step"], "build");
    assert_eq!(results[EVIL]["missing"], json!(["libmissing.so.1"]));
    let signature = results[EVIL]["signature"]
        .as_str()
        .expect("signature")
        .to_owned();
    let requests = github.take();
    assert!(
        requests
            .iter()
            .all(|r| r.authorization == "Bearer test-token-1"),
        "{requests:?}"
    );
    let created: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/repos/owner/set/issues")
        .collect();
    assert_eq!(created.len(), 1, "{requests:?}");
    assert_eq!(created[0].body["labels"], json!(["upkeep"]));
    let title = created[0].body["title"].as_str().expect("title");
    assert!(
        title.starts_with(
            "libevil fails at build (CUDA 13.0.2, linux-x86_64): needs libmissing.so.1"
        ),
        "{title}"
    );
    let body = created[0].body["body"].as_str().expect("body");
    for expected in [
        &format!("signature={signature} job={EVIL}"),
        "| package | `libevil` |",
        "| CUDA release | 13.0.2 |",
        "| failing step | build |",
        "| missing library | `libmissing.so.1` |",
        "needs libmissing.so.1, which no package of the set provides",
        "libevil_cuda-13.0.2_linux-x86_64_any.log",
    ] {
        assert!(body.contains(expected), "{expected} in {body}");
    }
    let log = results[EVIL]["log"].as_str().expect("log");
    assert!(
        std::fs::read_to_string(log)
            .expect("the log")
            .contains("libmissing.so.1")
    );
    // What passed is in the binary cache, signed.
    let narinfos = std::fs::read_dir(&binary_cache)
        .expect("cache")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".narinfo"))
        })
        .count();
    assert!(narinfos >= 2, "{narinfos} narinfos");
    let good_lib = results[GOOD]["store_paths"]["lib"]
        .as_str()
        .expect("lib")
        .to_owned();

    // Run 2, nothing changed: no new issue, one comment; unchanged outputs not checked again.
    let (code, report, stderr) = place.upkeep(&token, &run_args);
    assert_eq!(code, 1, "{stderr}");
    let results = by_job(&report);
    assert_eq!(
        results[EVIL]["signature"],
        signature.as_str(),
        "the same failure, the same signature"
    );
    assert_eq!(results[CUDART]["reused"], true, "{report}");
    assert_eq!(results[GOOD]["store_paths"]["lib"], good_lib.as_str());
    let requests = github.take();
    assert!(
        !requests
            .iter()
            .any(|r| r.method == "POST" && r.path == "/repos/owner/set/issues"),
        "{requests:?}"
    );
    let comments: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.path == "/repos/owner/set/issues/1/comments")
        .collect();
    assert_eq!(comments.len(), 1, "{requests:?}");
    assert!(
        comments[0].body["body"]
            .as_str()
            .expect("text")
            .starts_with("Still failing")
    );

    // Filing again for the same run repeats nothing.
    let (code, filed, stderr) = place.upkeep(&token, &[&["issues"][..], &tracker].concat());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(filed, json!({"opened": [], "commented": [], "closed": []}));

    // libevil fixed (it needs the runtime now, which the set has); libgood broken.
    local_package(
        place.dir.path(),
        "libevil",
        "libscale_i.so",
        "libcudart.so.13",
    );
    assert_eq!(
        good,
        local_package(place.dir.path(), "libgood", "multiarch.so", "libgone.so.1")
    );
    let (code, report, stderr) = place.upkeep(&token, &run_args);
    assert_eq!(code, 1, "{stderr}");
    let results = by_job(&report);
    assert_eq!(results[EVIL]["outcome"], "passed", "{report}");
    assert_eq!(results[EVIL]["changes"], json!([{"kind": "fixed"}]));
    assert_eq!(results[GOOD]["outcome"], "failed");
    assert_eq!(
        results[GOOD]["changes"],
        json!([{"kind": "newly-failing", "step": "build"}])
    );
    let requests = github.take();
    let shown: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        shown.contains(&"POST /repos/owner/set/issues/1/comments".to_owned()),
        "{shown:?}"
    );
    assert!(
        shown.contains(&"PATCH /repos/owner/set/issues/1".to_owned()),
        "{shown:?}"
    );
    let close = requests
        .iter()
        .find(|r| r.method == "PATCH")
        .expect("close");
    assert_eq!(close.body["state"], "closed");
    let issues = github.issues();
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert_eq!(issues[0].state, "closed");
    assert!(
        issues[0]
            .comments
            .last()
            .expect("comment")
            .starts_with("Fixed")
    );
    assert_eq!(
        issues[1].labels,
        ["upkeep", "regression"],
        "a package that passed and fails is a regression"
    );
    assert!(
        issues[1].title.contains("libgood") && issues[1].body.contains("libgone.so.1"),
        "{:?}",
        issues[1]
    );
    assert!(
        issues[1]
            .body
            .contains("regression: passed before, fails at build now")
    );

    // The dashboard: every package of the set, its state, in a browser.
    let page = place.path("upkeep.html");
    let (code, board, stderr) = place.upkeep(&[], &["report", "--html", s(&page)]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        (
            board["passed"].as_u64(),
            board["failed"].as_u64(),
            board["regressions"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(!html.contains("://"), "the page names no other resource");
    let Some(browser) = common::chromium::chromium() else {
        return;
    };
    let (dom, console) = common::chromium::load(&browser, &page);
    assert_eq!(console, Vec::<String>::new());
    for (package, status) in [
        ("cuda_cudart", "passed"),
        ("libevil", "passed"),
        ("libgood", "failed"),
    ] {
        let row = dom
            .split(&format!("<tr data-package=\"{package}\">"))
            .nth(1)
            .and_then(|rest| rest.split("</tr>").next())
            .unwrap_or_else(|| panic!("no row for {package}: {dom}"));
        assert!(
            row.contains(&format!("data-status=\"{status}\"")),
            "{package}: {row}"
        );
        assert!(row.contains("last success: 20"), "{package}: {row}");
    }
    assert!(
        dom.contains("failed at build") && dom.contains("needs libgone.so.1"),
        "{dom}"
    );
    assert!(
        dom.contains("<svg class=\"trend\""),
        "closure trends: {dom}"
    );
}
