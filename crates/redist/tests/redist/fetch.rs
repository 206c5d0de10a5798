//! Downloads from hostile servers and requests: a loopback HTTP server written here
//! sends bodies without end or longer than promised; requests name paths instead of
//! hashes, or special files. Nothing may grow past its bound, block, or leave the cache.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cudapkgs_redist::Error;
use cudapkgs_redist::fetch::{Fetcher, Request};

/// How a server answers one request.
type Respond = fn(&mut TcpStream);

/// An HTTP server on 127.0.0.1 that answers every request with `respond`, recording the
/// request lines.
struct Loopback {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Loopback {
    fn start(respond: Respond) -> Loopback {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || {
                    if let Some(line) = read_request(&mut stream) {
                        seen.lock().expect("lock").push(line);
                        respond(&mut stream);
                    }
                });
            }
        });
        Loopback { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }
}

/// The request line, once the whole header has arrived.
fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut header = Vec::new();
    let mut byte = [0u8; 1];
    while !header.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        header.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&header);
    text.lines().next().map(str::to_owned)
}

/// Zeros without end and without a `Content-Length`, until the client hangs up.
fn endless(stream: &mut TcpStream) {
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    let chunk = vec![0u8; 64 << 10];
    while stream.write_all(&chunk).is_ok() {}
}

/// A `Content-Length` of 10 MiB.
fn ten_mebibytes(stream: &mut TcpStream) {
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n");
    let chunk = vec![0u8; 64 << 10];
    for _ in 0..160 {
        if stream.write_all(&chunk).is_err() {
            return;
        }
    }
}

/// Promises 10 MiB, sends 1 MiB and hangs up.
fn breaks_off(stream: &mut TcpStream) {
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n");
    let _ = stream.write_all(&vec![1u8; 1 << 20]);
}

/// The body of `breaks_off_once_then_ignores_range`.
fn two_mebibytes_of_sevens() -> Vec<u8> {
    vec![7u8; 2 << 20]
}

/// The first request gets half the body and a hang-up; every later one the whole body
/// with 200, whatever `Range` it asks (as servers that ignore `Range` answer).
fn breaks_off_once_then_ignores_range(stream: &mut TcpStream) {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let body = two_mebibytes_of_sevens();
    let header = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
    let _ = stream.write_all(header.as_bytes());
    if CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
        let _ = stream.write_all(&body[..body.len() / 2]);
        return;
    }
    let _ = stream.write_all(&body);
}

/// The first request gets half the body and then nothing, the connection held open; a
/// request with `Range` gets the rest (206); each part comes in slices 200 ms apart.
fn stalls_once_then_resumes(stream: &mut TcpStream) {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let body = two_mebibytes_of_sevens();
    let half = body.len() / 2;
    let slowly = |stream: &mut TcpStream, part: &[u8]| {
        for slice in part.chunks(part.len() / 4) {
            if stream.write_all(slice).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    if CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
        let header = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        let _ = stream.write_all(header.as_bytes());
        slowly(stream, &body[..half]);
        let _ = stream.read(&mut [0u8; 1]);
        return;
    }
    let header = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {half}-{}/{}\r\n\r\n",
        body.len() - half,
        body.len() - 1,
        body.len()
    );
    let _ = stream.write_all(header.as_bytes());
    slowly(stream, &body[half..]);
}

/// A page whose body comes a byte a second, without end.
fn trickles(stream: &mut TcpStream) {
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    while stream.write_all(b"1\r\n \r\n").is_ok() {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Accepts the request and never answers, until the client hangs up.
fn silent(stream: &mut TcpStream) {
    let _ = stream.read(&mut [0u8; 1]);
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

/// Every file under `dir` but locks (which stay, so that waiting processes keep theirs).
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

fn no_progress(_: &Request, _: u64, _: Option<u64>) {}

#[test]
fn a_hash_that_is_a_path_names_no_file_and_downloads_nothing() {
    let server = Loopback::start(endless);
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
            url: server.url("/x.whl"),
            sha256: sha256.clone(),
            size: None,
        };
        let error = fetcher
            .fetch(&request, &no_progress)
            .expect_err("not a hash");
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
    let server = Loopback::start(breaks_off);
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
            url: server.url(&format!("/{i}.whl")),
            sha256: sha256.clone(),
            size: None,
        };
        let fetcher = fetcher.clone();
        let error = within(Duration::from_secs(60), move || {
            fetcher.fetch(&request, &no_progress)
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
        url: server.url("/big.whl"),
        sha256: "4".repeat(64),
        size: None,
    };
    let error = within(Duration::from_secs(60), move || {
        small.fetch(&request, &no_progress)
    })
    .expect_err("broken off");
    assert!(error.to_string().contains("were removed"), "{error}");
    assert_eq!(partials(&cache), Vec::<String>::new());
}

#[test]
fn a_body_without_end_stops_at_the_maximum_and_leaves_nothing() {
    let server = Loopback::start(endless);
    let dir = tempfile::tempdir().expect("temp");
    let cache = dir.path().join("cache");
    let mut fetcher = Fetcher::new(&cache);
    fetcher.max_size = 1 << 20;
    let request = Request {
        url: server.url("/x.whl"),
        sha256: "0".repeat(64),
        size: None,
    };
    let error = within(Duration::from_secs(60), move || {
        fetcher.fetch(&request, &no_progress)
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
    let server = Loopback::start(silent);
    let dir = tempfile::tempdir().expect("temp");
    let mut fetcher = Fetcher::new(&dir.path().join("cache"));
    fetcher.set_response_timeout(Duration::from_secs(1));
    fetcher.retries = 1;
    fetcher.backoff = Duration::from_millis(10);
    let page = server.url("/simple/cuda-cudart/");
    let file = Request {
        url: server.url("/x.whl"),
        sha256: "0".repeat(64),
        size: None,
    };
    let (page_error, file_error) = within(Duration::from_secs(30), {
        let page = page.clone();
        let file = file.clone();
        move || {
            (
                fetcher.get_text(&page, "text/html").expect_err("no answer"),
                fetcher.fetch(&file, &no_progress).expect_err("no answer"),
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

#[test]
fn a_download_resumed_from_a_server_that_ignores_range_starts_over() {
    let server = Loopback::start(breaks_off_once_then_ignores_range);
    let dir = tempfile::tempdir().expect("temp");
    let mut fetcher = Fetcher::new(&dir.path().join("cache"));
    fetcher.backoff = Duration::from_millis(10);
    let body = two_mebibytes_of_sevens();
    let request = Request {
        url: server.url("/x.whl"),
        sha256: sha256_of(&body),
        // Known, as indexes give it: the second answer's length plus the bytes kept
        // from the first had been taken for more than the file holds.
        size: Some(body.len() as u64),
    };
    let path = within(Duration::from_secs(60), move || {
        fetcher.fetch(&request, &no_progress)
    })
    .expect("the second attempt brings the whole file");
    assert_eq!(std::fs::read(path).expect("read"), body);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
}

#[test]
fn a_stalled_download_is_resumed_and_a_slow_one_is_not_cut() {
    let server = Loopback::start(stalls_once_then_resumes);
    let dir = tempfile::tempdir().expect("temp");
    let mut fetcher = Fetcher::new(&dir.path().join("cache"));
    // Each part takes longer than the timeout, with no pause as long as it.
    fetcher.set_response_timeout(Duration::from_millis(700));
    fetcher.backoff = Duration::from_millis(10);
    let body = two_mebibytes_of_sevens();
    let request = Request {
        url: server.url("/x.whl"),
        sha256: sha256_of(&body),
        size: Some(body.len() as u64),
    };
    let path = within(Duration::from_secs(30), move || {
        fetcher.fetch(&request, &no_progress)
    })
    .expect("resumed after the stall");
    assert_eq!(std::fs::read(path).expect("read"), body);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "one stall, one resumption: {requests:?}");
}

#[test]
fn a_page_that_trickles_fails_after_twice_the_response_timeout() {
    let server = Loopback::start(trickles);
    let dir = tempfile::tempdir().expect("temp");
    let mut fetcher = Fetcher::new(&dir.path().join("cache"));
    fetcher.set_response_timeout(Duration::from_secs(1));
    fetcher.retries = 1;
    fetcher.backoff = Duration::from_millis(10);
    let page = server.url("/simple/cuda-cudart/");
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
    let server = Loopback::start(ten_mebibytes);
    let dir = tempfile::tempdir().expect("temp");
    let cache = dir.path().join("cache");
    let mut fetcher = Fetcher::new(&cache);
    fetcher.max_size = 1 << 20;
    fetcher.retries = 0;
    // A declared size over the maximum: not even asked for.
    let declared = Request {
        url: server.url("/declared.whl"),
        sha256: "0".repeat(64),
        size: Some(1 << 40),
    };
    let error = fetcher
        .fetch(&declared, &no_progress)
        .expect_err("over the maximum");
    assert!(matches!(error, Error::TooLarge { .. }), "{error}");
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    // The server promises more than the maximum (no size known) or than the size given.
    for size in [None, Some(1000)] {
        let request = Request {
            url: server.url("/promised.whl"),
            sha256: "0".repeat(64),
            size,
        };
        let error = fetcher
            .fetch(&request, &no_progress)
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
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
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
                fetcher.fetch(&request, &no_progress),
                fetcher.get_text(&request.url, "application/json"),
            )
        });
        for error in [archive.expect_err("refused"), text.expect_err("refused")] {
            assert!(
                error.to_string().contains("not a regular file"),
                "{url}: {error}"
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
        .fetch(&request, &no_progress)
        .expect("fetched");
    assert_eq!(std::fs::read(path).expect("read"), b"wheel bytes");
}
