//! Downloads from hostile servers and requests: the testkit's loopback HTTP server
//! sends bodies without end or longer than promised; requests name paths instead of
//! hashes, or special files. Nothing may grow past its bound, block, or leave the cache.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use cudapkgs_redist::Error;
use cudapkgs_redist::fetch::{Fetcher, Request};
use cudapkgs_report::{Phase, Recorder, Silent};
use cudapkgs_testkit::{Fault, Server};

/// `path` on `server`.
fn at(server: &Server, path: &str) -> String {
    format!("{}{path}", server.url())
}

/// Zeros without end and without a `Content-Length`, until the client hangs up.
fn endless() -> Server {
    Server::new().fault(Fault::Endless.always())
}

/// A `Content-Length` of 10 MiB, and as many bytes.
fn ten_mebibytes() -> Server {
    Server::new().fallback(vec![0u8; 10 << 20])
}

/// Promises 10 MiB, sends 1 MiB and hangs up.
fn breaks_off() -> Server {
    Server::new()
        .fallback(vec![1u8; 1 << 20])
        .fault(Fault::ContentLength(10_485_760).always())
}

/// The body of `breaks_off_once_then_ignores_range`.
fn two_mebibytes_of_sevens() -> Vec<u8> {
    vec![7u8; 2 << 20]
}

/// The first request gets half the body and a hang-up; every later one the whole body
/// with 200, whatever `Range` it asks (as servers that ignore `Range` answer).
fn breaks_off_once_then_ignores_range() -> Server {
    let body = two_mebibytes_of_sevens();
    let half = body.len() as u64 / 2;
    Server::new()
        .fallback(body)
        .ignore_range()
        .fault(Fault::Truncate(half).first(1))
}

/// The first request gets half the body and then nothing, the connection held open; a
/// request with `Range` gets the rest (206); each part comes in slices 200 ms apart.
fn stalls_once_then_resumes() -> Server {
    let body = two_mebibytes_of_sevens();
    let half = body.len() / 2;
    Server::new()
        .fallback(body)
        .throttle(half / 4, Duration::from_millis(200))
        .fault(Fault::Stall(half as u64).first(1))
}

/// A page whose body comes a byte at a time, 200 ms apart, without end.
fn trickles() -> Server {
    Server::new().fault(Fault::Trickle(Duration::from_millis(200)).always())
}

/// Accepts the request and never answers, until the client hangs up.
fn silent() -> Server {
    Server::new().fault(Fault::Silent.always())
}

/// Runs `work` on a thread and fails the test when it takes longer than `limit`: the
/// behaviours under test used to block forever.
fn within<T: Send + 'static>(limit: Duration, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(work());
    });
    receive
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("still running after {limit:?}"))
}

/// Every file under `dir` but the locks of downloads still running.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else if path.extension().is_none_or(|e| e != "lock") {
            found.push(path);
        }
    }
    found
}

fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut hex, b| {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

#[test]
fn a_hash_that_is_a_path_names_no_file_and_downloads_nothing() {
    let server = endless();
    let dir = tempfile::tempdir().expect("temp");
    let cache = dir.path().join("cache");
    // Where `cache/sha256/../../victim/target.whl` leads.
    let victim = dir.path().join("victim/target.whl");
    std::fs::create_dir_all(victim.parent().expect("parent")).expect("mkdir");
    std::fs::write(&victim, b"not verified").expect("write");
    let fetcher = Fetcher::new(&cache);
    for sha256 in [
        "../../victim/target.whl".to_owned(),
        format!("../../victim/{}", "a".repeat(52)),
        "A".repeat(64),
        String::new(),
    ] {
        let request = Request {
            url: at(&server, "/x.whl"),
            sha256: sha256.clone(),
            size: None,
        };
        let error = fetcher.fetch(&request, &Silent).expect_err("not a hash");
        assert!(
            error.to_string().contains("is not a SHA-256"),
            "{sha256}: {error}"
        );
        assert!(fetcher.cached_path(&sha256).is_err(), "{sha256}");
    }
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(!cache.exists(), "the cache was created");
    assert_eq!(std::fs::read(&victim).expect("read"), b"not verified");
}

#[test]
fn what_broken_off_downloads_keep_is_bounded_all_together() {
    let server = breaks_off();
    let dir = tempfile::tempdir().expect("temp");
    let cache = dir.path().join("cache");
    let mut fetcher = Fetcher::new(&cache);
    fetcher.retries = 0;
    fetcher.max_partial = (5 << 20) / 2;
    let partials = |cache: &Path| {
        let mut names: Vec<String> = files_under(&cache.join("partial"))
            .iter()
            .map(|path| {
                path.file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    };
    // Each file the index names (with a hash of its choosing) breaks off after 1 MiB.
    let hashes: Vec<String> = ["1", "2", "3"]
        .iter()
        .map(|digit| digit.repeat(64))
        .collect();
    for (i, sha256) in hashes.iter().enumerate() {
        let request = Request {
            url: at(&server, &format!("/{i}.whl")),
            sha256: sha256.clone(),
            size: None,
        };
        let fetcher = fetcher.clone();
        let error = within(Duration::from_secs(60), move || {
            fetcher.fetch(&request, &Silent)
        })
        .expect_err("broken off");
        assert!(
            error.to_string().contains("the bytes so far are kept"),
            "{error}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Two MiB fit under the bound; the oldest went to make room for the third.
    assert_eq!(partials(&cache), [hashes[1].clone(), hashes[2].clone()]);
    // One that alone is more than the bound keeps nothing.
    let mut small = fetcher.clone();
    small.max_partial = 1 << 19;
    let request = Request {
        url: at(&server, "/big.whl"),
        sha256: "4".repeat(64),
        size: None,
    };
    let error = within(Duration::from_secs(60), move || {
        small.fetch(&request, &Silent)
    })
    .expect_err("broken off");
    assert!(error.to_string().contains("were removed"), "{error}");
    assert_eq!(partials(&cache), Vec::<String>::new());
}

#[test]
fn a_body_without_end_stops_at_the_maximum_and_leaves_nothing() {
    let server = endless();
    let dir = tempfile::tempdir().expect("temp");
    let cache = dir.path().join("cache");
    let mut fetcher = Fetcher::new(&cache);
    fetcher.max_size = 1 << 20;
    let request = Request {
        url: at(&server, "/x.whl"),
        sha256: "0".repeat(64),
        size: None,
    };
    let error = within(Duration::from_secs(60), move || {
        fetcher.fetch(&request, &Silent)
    })
    .expect_err("too large");
    assert!(matches!(error, Error::TooLarge { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("more than the maximum download of 1048576 bytes"),
        "{error}"
    );
    assert_eq!(files_under(&cache), Vec::<PathBuf>::new());
}

#[test]
fn a_server_that_never_answers_fails_after_the_response_timeout() {
    let server = silent();
    let dir = tempfile::tempdir().expect("temp");
    let mut fetcher = quick_fetcher(dir.path());
    fetcher.set_response_timeout(Duration::from_secs(1));
    fetcher.retries = 1;
    let page = at(&server, "/simple/cuda-cudart/");
    let file = Request {
        url: at(&server, "/x.whl"),
        sha256: "0".repeat(64),
        size: None,
    };
    let (page_error, file_error) = within(Duration::from_secs(30), {
        let page = page.clone();
        let file = file.clone();
        move || {
            (
                fetcher.get_text(&page, "text/html").expect_err("no answer"),
                fetcher.fetch(&file, &Silent).expect_err("no answer"),
            )
        }
    });
    for (error, url) in [(page_error, &page), (file_error, &file.url)] {
        let message = error.to_string();
        assert!(matches!(error, Error::Download { .. }), "{message}");
        assert!(
            message.starts_with(url.as_str())
                && message.contains("accepted the connection but sent no response within 1 s"),
            "{message}"
        );
    }
    // Each was asked again once before giving up.
    assert_eq!(server.requests().len(), 4, "{:?}", server.requests());
}

/// A fetcher into `DIR/cache` that asks again after 10 ms.
fn quick_fetcher(dir: &Path) -> Fetcher {
    let mut fetcher = Fetcher::new(&dir.join("cache"));
    fetcher.backoff = Duration::from_millis(10);
    fetcher
}

/// Fetches the two mebibytes of sevens that `server` serves as `/x.whl` (of known size,
/// as indexes give it) with `fetcher` within `limit`, and checks them whole; the requests
/// the server saw. However many attempts it took, the reporter is told of one download
/// of the file that ends at its size.
fn fetch_sevens(server: &Server, fetcher: Fetcher, limit: Duration, what: &str) -> Vec<String> {
    let body = two_mebibytes_of_sevens();
    let size = body.len() as u64;
    let request = Request {
        url: at(server, "/x.whl"),
        sha256: sha256_of(&body),
        size: Some(size),
    };
    let recorder = std::sync::Arc::new(Recorder::default());
    let told = std::sync::Arc::clone(&recorder);
    let path = within(limit, move || fetcher.fetch(&request, told.as_ref())).expect(what);
    assert_eq!(std::fs::read(path).expect("read"), body);
    let tasks = recorder.tasks();
    assert_eq!(tasks.len(), 1, "{what}: {tasks:?}");
    let download = &tasks[0];
    assert_eq!(
        (download.phase, download.label.as_str(), download.total),
        (Phase::Download, "x.whl", Some(size)),
        "{what}"
    );
    assert_eq!(download.done, size, "{what}");
    assert!(download.finished && download.updates > 0, "{what}");
    server.requests()
}

#[test]
fn a_download_resumed_from_a_server_that_ignores_range_starts_over() {
    let server = breaks_off_once_then_ignores_range();
    let dir = tempfile::tempdir().expect("temp");
    let fetcher = quick_fetcher(dir.path());
    // The size is known: the second answer's length plus the bytes kept from the first
    // had been taken for more than the file holds.
    let requests = fetch_sevens(
        &server,
        fetcher,
        Duration::from_secs(60),
        "the second attempt brings the whole file",
    );
    assert_eq!(requests.len(), 2, "{requests:?}");
}

#[test]
fn a_stalled_download_is_resumed_and_a_slow_one_is_not_cut() {
    let server = stalls_once_then_resumes();
    let dir = tempfile::tempdir().expect("temp");
    let mut fetcher = quick_fetcher(dir.path());
    // Each part takes longer than the timeout, with no pause as long as it.
    fetcher.set_response_timeout(Duration::from_millis(700));
    let requests = fetch_sevens(
        &server,
        fetcher,
        Duration::from_secs(30),
        "resumed after the stall",
    );
    assert_eq!(requests.len(), 2, "one stall, one resumption: {requests:?}");
}

#[test]
fn a_page_that_trickles_fails_after_twice_the_response_timeout() {
    let server = trickles();
    let dir = tempfile::tempdir().expect("temp");
    let mut fetcher = quick_fetcher(dir.path());
    fetcher.set_response_timeout(Duration::from_secs(1));
    fetcher.retries = 1;
    let page = at(&server, "/simple/cuda-cudart/");
    let started = std::time::Instant::now();
    let error = within(Duration::from_secs(30), {
        let page = page.clone();
        move || {
            fetcher
                .get_text(&page, "text/html")
                .expect_err("never whole")
        }
    });
    let message = error.to_string();
    assert!(
        message.starts_with(page.as_str())
            && message.contains("did not send the whole document within 2 s"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.requests().len(), 2, "asked again once");
}

#[test]
fn sizes_past_the_bound_are_refused_before_the_body() {
    let server = ten_mebibytes();
    let dir = tempfile::tempdir().expect("temp");
    let cache = dir.path().join("cache");
    let mut fetcher = Fetcher::new(&cache);
    fetcher.max_size = 1 << 20;
    fetcher.retries = 0;
    // A declared size over the maximum: not even asked for.
    let declared = Request {
        url: at(&server, "/declared.whl"),
        sha256: "0".repeat(64),
        size: Some(1 << 40),
    };
    let error = fetcher
        .fetch(&declared, &Silent)
        .expect_err("over the maximum");
    assert!(matches!(error, Error::TooLarge { .. }), "{error}");
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    // The server promises more than the maximum (no size known) or than the size given.
    for size in [None, Some(1000)] {
        let request = Request {
            url: at(&server, "/promised.whl"),
            sha256: "0".repeat(64),
            size,
        };
        let error = fetcher
            .fetch(&request, &Silent)
            .expect_err("longer than allowed");
        assert!(matches!(error, Error::TooLarge { .. }), "{size:?}: {error}");
        assert!(
            error.to_string().contains("10485760 bytes"),
            "{size:?}: {error}"
        );
        assert_eq!(files_under(&cache), Vec::<PathBuf>::new());
    }
}

#[test]
fn file_urls_read_only_regular_files() {
    let dir = tempfile::tempdir().expect("temp");
    let fifo = dir.path().join("fifo");
    cudapkgs_testkit::make_fifo(&fifo);
    let cache = dir.path().join("cache");
    for target in [
        fifo.clone(),
        PathBuf::from("/dev/zero"),
        dir.path().to_owned(),
    ] {
        let url = format!("file://{}", target.display());
        let fetcher = Fetcher::new(&cache);
        let request = Request {
            url: url.clone(),
            sha256: "0".repeat(64),
            size: None,
        };
        let (archive, text) = within(Duration::from_secs(30), move || {
            (
                fetcher.fetch(&request, &Silent),
                fetcher.get_text(&request.url, "application/json"),
            )
        });
        for error in [archive.expect_err("refused"), text.expect_err("refused")] {
            let cause = std::error::Error::source(&error).map(ToString::to_string);
            assert!(
                cause
                    .as_deref()
                    .is_some_and(|cause| cause.contains("not a regular file")),
                "{url}: {error}: {cause:?}"
            );
        }
        assert_eq!(files_under(&cache), Vec::<PathBuf>::new());
    }
    // A regular file still comes through, verified.
    let wheel = dir.path().join("x.whl");
    std::fs::write(&wheel, b"wheel bytes").expect("write");
    let request = Request {
        url: format!("file://{}", wheel.display()),
        sha256: sha256_of(b"wheel bytes"),
        size: None,
    };
    let path = Fetcher::new(&cache)
        .fetch(&request, &Silent)
        .expect("fetched");
    assert_eq!(std::fs::read(path).expect("read"), b"wheel bytes");
}

#[test]
fn a_finished_download_leaves_no_lock_file() {
    let body = two_mebibytes_of_sevens();
    let server = Server::new().fallback(body.clone());
    let dir = tempfile::tempdir().expect("temp");
    let cache = dir.path().join("cache");
    let fetcher = Fetcher::new(&cache);
    let request = Request {
        url: at(&server, "/x.whl"),
        sha256: sha256_of(&body),
        size: Some(body.len() as u64),
    };
    let path = fetcher.fetch(&request, &Silent).expect("fetched");
    assert_eq!(std::fs::read(path).expect("read"), body);
    let left: Vec<_> = std::fs::read_dir(cache.join("partial"))
        .expect("the partial folder")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
