//! `cudapkgs upkeep` end to end: a set of the real CUDA runtime from the loopback mirror
//! and local packages in NVIDIA's layout, built by runs of `upkeep run` into a real
//! store, results database, binary cache and log folder. GitHub is the one part that
//! is not real: `GitHubDouble` below is a test double on 127.0.0.1 that records every
//! request and answers as GitHub's REST API does.

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::tar::{file, nvidia_archive};
use common::{
    Server, fixture, mirror, run, run_on_store, run_within, s, served_mirror, store_args,
};
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
    mirror()
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
            all.extend(store_args(&store, &state));
            all.extend(["--cache", s(&cache)]);
        }
        let (code, stdout, stderr) = run_within(Duration::from_secs(900), vars, &all);
        // Each document fits the schema of its subcommand; a refusal is the error document.
        let document = match (code, args.first()) {
            (2, _) => Some("error".to_owned()),
            (_, Some(sub)) if ["plan", "run", "report", "merge", "issues"].contains(sub) => {
                Some(format!("upkeep-{sub}"))
            }
            _ => None,
        };
        if let Some(name) = document {
            crate::common::schema::assert_fits(&name, &stdout);
        }
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

/// The proof's set: the mirror's CUDA runtime, `libevil` (its library needs one nothing
/// provides) and `libgood` (needs the runtime), pushed to a signed folder cache.
struct Proof {
    place: Place,
    github: GitHubDouble,
    binary_cache: PathBuf,
    _server: Server,
}

impl Proof {
    fn new(mirror: &Path) -> Proof {
        let server = Server::serve_dir(mirror);
        let place = Place::new();
        let evil = local_package(
            place.dir.path(),
            "libevil",
            "libscale_i.so",
            "libmissing.so.1",
        );
        local_package(
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
            &[
                "cuda_cudart",
                &format!("libevil={}", evil.display()),
                GOOD_PACKAGE,
            ],
            &format!(
                "\n[upkeep.cache]\nto = \"file://{}\"\nsecret-key-file = \"cache.sk\"\nprivate = true\n",
                binary_cache.display()
            ),
        );
        Proof {
            place,
            github: GitHubDouble::start(),
            binary_cache,
            _server: server,
        }
    }

    /// `upkeep SUBCOMMAND --github-repo owner/set --github-api DOUBLE` with a token.
    fn with_github(&self, subcommand: &str) -> (i32, Value, String) {
        let api = self.github.url();
        let args = [
            subcommand,
            "--github-repo",
            "owner/set",
            "--github-api",
            &api,
        ];
        self.place
            .upkeep(&[("GITHUB_TOKEN", "test-token-1")], &args)
    }

    /// Run 1: the runtime and libgood pass and are pushed; libevil fails, one issue.
    fn first_run_files_one_issue(&self) -> (String, String) {
        let (code, report, stderr) = self.with_github("run");
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
        let requests = self.github.take();
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
        let narinfos = std::fs::read_dir(&self.binary_cache)
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
        (signature, good_lib)
    }

    /// Run 2, nothing changed: no new issue, one comment; unchanged outputs are not
    /// checked again; filing again for the same run repeats nothing.
    fn second_run_files_none(&self, signature: &str, good_lib: &str) {
        let (code, report, stderr) = self.with_github("run");
        assert_eq!(code, 1, "{stderr}");
        let results = by_job(&report);
        assert_eq!(
            results[EVIL]["signature"], signature,
            "the same failure, the same signature"
        );
        assert_eq!(results[CUDART]["reused"], true, "{report}");
        assert_eq!(results[GOOD]["store_paths"]["lib"], good_lib);
        let requests = self.github.take();
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
        let (code, filed, stderr) = self.with_github("issues");
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(filed, json!({"opened": [], "commented": [], "closed": []}));
    }

    /// Run 3, libevil fixed (it needs the runtime now, which the set has) and libgood
    /// broken: the first issue is closed, the regression filed with its label.
    fn third_run_closes_and_files_the_regression(&self) {
        let dir = self.place.dir.path();
        local_package(dir, "libevil", "libscale_i.so", "libcudart.so.13");
        local_package(dir, "libgood", "multiarch.so", "libgone.so.1");
        let (code, report, stderr) = self.with_github("run");
        assert_eq!(code, 1, "{stderr}");
        let results = by_job(&report);
        assert_eq!(results[EVIL]["outcome"], "passed", "{report}");
        assert_eq!(results[EVIL]["changes"], json!([{"kind": "fixed"}]));
        assert_eq!(results[GOOD]["outcome"], "failed");
        assert_eq!(
            results[GOOD]["changes"],
            json!([{"kind": "newly-failing", "step": "build"}])
        );
        let requests = self.github.take();
        let shown: Vec<String> = requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        for expected in [
            "POST /repos/owner/set/issues/1/comments",
            "PATCH /repos/owner/set/issues/1",
        ] {
            assert!(
                shown.iter().any(|r| r == expected),
                "{expected} in {shown:?}"
            );
        }
        let close = requests
            .iter()
            .find(|r| r.method == "PATCH")
            .expect("close");
        assert_eq!(close.body["state"], "closed");
        let issues = self.github.issues();
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
    }

    /// The dashboard: every package of the set with its state, in a browser.
    fn dashboard_shows_every_package(&self) {
        let page = self.place.path("upkeep.html");
        let (code, board, stderr) = self.place.upkeep(&[], &["report", "--html", s(&page)]);
        assert_eq!(code, 0, "{stderr}");
        let counts = ["passed", "failed", "regressions"].map(|key| board[key].as_u64());
        assert_eq!(counts, [Some(2), Some(1), Some(1)], "{board}");
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
}

#[test]
fn a_failure_is_filed_once_commented_on_when_it_recurs_and_closed_when_fixed() {
    let Some(mirror) = the_mirror() else { return };
    let proof = Proof::new(&mirror);
    let (signature, good_lib) = proof.first_run_files_one_issue();
    proof.second_run_files_none(&signature, &good_lib);
    proof.third_run_closes_and_files_the_regression();
    proof.dashboard_shows_every_package();
}

/// `libgood` (needs the CUDA runtime) and `libevil` (needs `libmissing.so.1`) in `dir`.
/// The packages `Place::good_and_evil` makes, as its configuration names them.
const GOOD_PACKAGE: &str = "libgood=libgood-linux-x86_64-1.0-archive.tar.xz";
const EVIL_PACKAGE: &str = "libevil=libevil-linux-x86_64-1.0-archive.tar.xz";

impl Place {
    /// A place holding `libgood` (whose library finds everything) and `libevil` (whose
    /// library needs one that no package has), configured for `packages` from the
    /// mirror at `base_url`.
    fn good_and_evil(base_url: &str, packages: &[&str], extra: &str) -> Place {
        let place = Place::new();
        local_package(
            place.dir.path(),
            "libgood",
            "multiarch.so",
            "libcudart.so.13",
        );
        local_package(
            place.dir.path(),
            "libevil",
            "libscale_i.so",
            "libmissing.so.1",
        );
        place.configure(base_url, packages, extra);
        place
    }
}

/// The number of results of each job, and of runs, in the database at `path`.
fn recorded(path: &Path) -> (BTreeMap<String, i64>, i64) {
    recorded_now(path).expect("the results database")
}

/// `recorded`, or the error of a database that is not (yet) there: the file exists
/// before its tables do.
fn recorded_now(path: &Path) -> rusqlite::Result<(BTreeMap<String, i64>, i64)> {
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut statement = db.prepare("SELECT job, count(*) FROM results GROUP BY job")?;
    let jobs = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .and_then(Iterator::collect)?;
    let runs = db.query_row("SELECT count(*) FROM runs", [], |row| row.get(0))?;
    Ok((jobs, runs))
}

#[test]
fn a_run_killed_midway_is_taken_up_and_every_job_recorded_once() {
    use std::os::unix::process::CommandExt;
    let Some(server) = served_mirror() else {
        return;
    };
    // NVRTC, second, takes long enough to be killed in.
    let place = Place::good_and_evil(
        &server.url(),
        &[GOOD_PACKAGE, "cuda_nvrtc", EVIL_PACKAGE],
        "",
    );
    let results = place.path("results.sqlite");
    let (store, state, cache) = (
        place.path("store"),
        place.path("state"),
        place.path("downloads"),
    );
    let config = place.path("cudapkgs.toml");
    let mut child = common::cudapkgs()
        .inherit_env()
        .command()
        .args(["--config", s(&config), "upkeep", "run"])
        .args(store_args(&store, &state))
        .args(["--cache", s(&cache)])
        .env_clear()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        // Its own group, so that the kill takes its build steps too, as a runner's end does.
        .process_group(0)
        .spawn()
        .expect("cudapkgs runs");
    let started = std::time::Instant::now();
    while !recorded_now(&results).is_ok_and(|(jobs, _)| !jobs.is_empty()) {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before it was killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no job recorded"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status()
        .expect("kill");
    assert!(status.success());
    let _ = child.wait();
    let (before, _) = recorded(&results);
    assert_eq!(before.len(), 1, "killed with one job recorded: {before:?}");

    let (code, report, stderr) = place.upkeep(&[], &["run"]);
    assert_eq!(code, 1, "libevil fails: {stderr}");
    assert_eq!(report["resumed"], true);
    assert!(
        stderr.contains(
            "libgood/cuda-13.0.2/linux-x86_64/any: recorded by the run this one takes up"
        ),
        "{stderr}"
    );
    let results_by_job = by_job(&report);
    assert_eq!(results_by_job.len(), 3);
    assert_eq!(
        results_by_job["cuda_nvrtc/cuda-13.0.2/linux-x86_64/any"]["outcome"],
        "passed"
    );
    let (jobs, runs) = recorded(&results);
    assert_eq!(runs, 1, "the killed run was taken up, not begun again");
    assert_eq!(
        jobs.values().copied().collect::<Vec<_>>(),
        [1, 1, 1],
        "{jobs:?}"
    );
    let (code, verify, _) = run_on_store(&store, &state, &["store", "verify"]);
    assert_eq!(code, 0, "the store is whole after the kill: {verify}");
}

/// `upkeep matrix --shards 2 --format github`, checked as GitHub Actions reads a
/// matrix: one line, an object holding only `include`, at most 256 objects of strings.
fn github_matrix(config: &Path) -> Vec<Value> {
    let (code, stdout, stderr) = run(&[
        "--config",
        s(config),
        "upkeep",
        "matrix",
        "--shards",
        "2",
        "--format",
        "github",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.lines().count(),
        1,
        "one line for $GITHUB_OUTPUT: {stdout}"
    );
    let matrix: Value = serde_json::from_str(&stdout).expect("JSON");
    let include = matrix["include"].as_array().expect("include");
    assert_eq!(matrix.as_object().expect("object").len(), 1);
    assert!(
        include.len() <= 256
            && include
                .iter()
                .all(|e| e.as_object().expect("entry").values().all(Value::is_string))
    );
    let shards: Vec<&str> = include
        .iter()
        .map(|e| e["shard"].as_str().expect("shard"))
        .collect();
    assert_eq!(shards, ["1/2", "2/2"]);

    include.clone()
}

/// `upkeep issues --issues-dir` over the merged database: one draft naming the missing
/// library, and nothing more when filed again.
fn drafts_are_filed_once(place: &Place, merged: &Path) {
    let drafts = place.path("drafts");
    let issues = ["issues", "--results", s(merged), "--issues-dir", s(&drafts)];
    let (code, filed, stderr) = place.upkeep(&[], &issues);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(filed["opened"].as_array().map(Vec::len), Some(1), "{filed}");
    assert_eq!(
        filed["opened"][0]["job"],
        "libevil/cuda-13.0.2/linux-x86_64/8.6"
    );
    let names: Vec<PathBuf> = std::fs::read_dir(&drafts)
        .expect("drafts")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(names.len(), 1);
    let draft = std::fs::read_to_string(&names[0]).expect("draft");
    assert!(
        draft.starts_with("state: open\nlabels: upkeep\n") && draft.contains("`libmissing.so.1`"),
        "{draft}"
    );
    let (_, filed, _) = place.upkeep(&[], &issues);
    assert_eq!(
        filed,
        json!({"opened": [], "commented": [], "closed": []}),
        "filed once"
    );
}

#[test]
fn shards_run_apart_merge_into_one_database_and_file_issues_once() {
    let Some(server) = served_mirror() else {
        return;
    };
    let place = Place::good_and_evil(
        &server.url(),
        &[GOOD_PACKAGE, EVIL_PACKAGE],
        "capabilities = [\"8.6\"]\n",
    );

    let include = github_matrix(&place.path("cudapkgs.toml"));
    // The plan, whole: every job of the set.
    let (code, plan, stderr) = place.upkeep(&[], &["plan"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(plan["shard"], "1/1", "{plan:#}");
    assert_eq!(
        plan["jobs"].as_array().map(Vec::len),
        plan["total"].as_u64().and_then(|n| usize::try_from(n).ok()),
        "{plan:#}"
    );

    // A tracker named without its token is refused before anything runs.
    let (code, _, stderr) = run_within(
        Duration::from_secs(60),
        &[],
        &[
            "--config",
            s(&place.path("cudapkgs.toml")),
            "upkeep",
            "run",
            "--github-repo",
            "owner/set",
        ],
    );
    common::assert_refused(code, &stderr, "GITHUB_TOKEN is not set");
    assert!(!place.path("results.sqlite").exists());

    let mut databases = Vec::new();
    for entry in include {
        let (shard, file) = (
            entry["shard"].as_str().expect("shard"),
            entry["results"].as_str().expect("file"),
        );
        let database = place.path(file);
        let (code, report, stderr) =
            place.upkeep(&[], &["run", "--shard", shard, "--results", s(&database)]);
        let results = by_job(&report);
        assert_eq!(results.len(), 1, "one job per shard: {report}");
        let failed = results.values().any(|r| r["outcome"] == "failed");
        assert_eq!(code, i32::from(failed), "{stderr}");
        databases.push(database);
    }
    let merged = place.path("merged.sqlite");
    let merge = [
        &["merge", "--into", s(&merged)][..],
        &databases.iter().map(|d| s(d)).collect::<Vec<_>>(),
    ]
    .concat();
    let (code, counts, stderr) = place.upkeep(&[], &merge);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(counts, json!({"runs": 2, "results": 2}));
    let (_, again, _) = place.upkeep(&[], &merge);
    assert_eq!(
        again,
        json!({"runs": 0, "results": 0}),
        "merging twice adds nothing"
    );

    drafts_are_filed_once(&place, &merged);
    let (code, board, stderr) = place.upkeep(&[], &["report", "--results", s(&merged)]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        (board["passed"].as_u64(), board["failed"].as_u64()),
        (Some(1), Some(1))
    );
}
