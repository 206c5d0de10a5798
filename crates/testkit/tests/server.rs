//! The loopback server as a raw HTTP/1.1 client sees it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cudapkgs_testkit::{Fault, Server, TestCommand};

/// Sends `request` (one, `Connection: close`) and returns the status line, the header
/// lines and the body read until the server closes.
fn ask(server: &Server, method: &str, path: &str, extra: &str) -> (String, Vec<String>, Vec<u8>) {
    let address = server.url().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"
    )
    .expect("send");
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a whole head");
    let head = String::from_utf8(bytes[..end].to_vec()).expect("utf-8 head");
    let mut lines = head.lines().map(str::to_owned);
    let status = lines.next().expect("a status line");
    (status, lines.collect(), bytes[end + 4..].to_vec())
}

#[test]
fn files_ranges_heads_and_missing_paths() {
    let dir = tempfile::tempdir().expect("temp");
    std::fs::create_dir_all(dir.path().join("sub/page")).expect("mkdir");
    std::fs::write(dir.path().join("sub/a.txt"), b"0123456789").expect("write");
    std::fs::write(dir.path().join("sub/page/index.json"), b"{}").expect("write");
    let server = Server::serve_dir(dir.path()).file("/memory", b"in memory".to_vec());

    let (status, _, body) = ask(&server, "GET", "/sub/a.txt", "");
    assert_eq!(
        (status.as_str(), body.as_slice()),
        ("HTTP/1.1 200 OK", &b"0123456789"[..])
    );
    let (status, headers, body) = ask(&server, "GET", "/sub/a.txt", "Range: bytes=4-\r\n");
    assert_eq!(status, "HTTP/1.1 206 Partial Content");
    assert!(
        headers.contains(&"Content-Range: bytes 4-9/10".to_owned()),
        "{headers:?}"
    );
    assert_eq!(body, b"456789");
    let (_, headers, body) = ask(&server, "GET", "/sub/a.txt", "Range: bytes=2-3\r\n");
    assert!(
        headers.contains(&"Content-Range: bytes 2-3/10".to_owned()),
        "{headers:?}"
    );
    assert_eq!(body, b"23");
    let (status, headers, _) = ask(&server, "GET", "/sub/a.txt", "Range: bytes=10-\r\n");
    assert!(status.starts_with("HTTP/1.1 416"), "{status}");
    assert!(
        headers.contains(&"Content-Range: bytes */10".to_owned()),
        "{headers:?}"
    );
    let (status, headers, body) = ask(&server, "HEAD", "/sub/a.txt", "");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains(&"Content-Length: 10".to_owned()),
        "{headers:?}"
    );
    assert!(body.is_empty());
    assert_eq!(ask(&server, "GET", "/memory", "").2, b"in memory");
    assert_eq!(ask(&server, "GET", "/sub/page/", "").2, b"{}");
    let listing = String::from_utf8(ask(&server, "GET", "/sub/", "").2).expect("utf-8");
    assert!(listing.contains("<a href=\"a.txt\">a.txt</a>"), "{listing}");
    for missing in ["/nothing", "/../etc/passwd", "/sub/a.txt/"] {
        let (status, _, _) = ask(&server, "GET", missing, "");
        assert!(status.starts_with("HTTP/1.1 404"), "{missing}: {status}");
    }
    let requests = server.requests();
    assert_eq!(requests[0], "GET /sub/a.txt -");
    assert_eq!(requests[1], "GET /sub/a.txt bytes=4-");
    assert_eq!(requests[4], "HEAD /sub/a.txt -");
}

#[test]
fn faults_apply_to_the_first_requests_of_each_path() {
    let server = Server::new()
        .file("/a", vec![1u8; 1000])
        .file("/b", vec![2u8; 1000])
        .fault(Fault::Status(503).first(2).on("/b"))
        .fault(Fault::Truncate(100).first(1));
    let (_, headers, body) = ask(&server, "GET", "/a", "");
    assert!(
        headers.contains(&"Content-Length: 1000".to_owned()),
        "{headers:?}"
    );
    assert_eq!(body.len(), 100);
    assert_eq!(ask(&server, "GET", "/a", "").2.len(), 1000);
    for _ in 0..2 {
        assert!(ask(&server, "GET", "/b", "").0.starts_with("HTTP/1.1 503"));
    }
    assert_eq!(ask(&server, "GET", "/b", "").2.len(), 1000);

    let liar = Server::new()
        .fallback(vec![3u8; 10])
        .fault(Fault::ContentLength(99).always());
    let (_, headers, body) = ask(&liar, "GET", "/anything", "");
    assert!(
        headers.contains(&"Content-Length: 99".to_owned()),
        "{headers:?}"
    );
    assert_eq!(body.len(), 10);
}

#[test]
fn a_server_ignoring_range_answers_whole_and_drop_ends_stalls() {
    let server = Server::new().fallback(vec![5u8; 64]).ignore_range();
    let (status, _, body) = ask(&server, "GET", "/x", "Range: bytes=10-\r\n");
    assert_eq!((status.as_str(), body.len()), ("HTTP/1.1 200 OK", 64));

    let stalled = Server::new()
        .fallback(vec![5u8; 64])
        .fault(Fault::Stall(8).always());
    let address = stalled.url().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.write_all(b"GET /x HTTP/1.1\r\n\r\n").expect("send");
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        bytes
    });
    std::thread::sleep(Duration::from_millis(200));
    drop(stalled);
    let bytes = reader.join().expect("read");
    assert!(bytes.ends_with(&[5u8; 8]), "{bytes:?}");
}

#[test]
fn commands_get_stdin_env_and_a_clean_environment() {
    let run = TestCommand::new("sh")
        .args(["-c", "cat; echo \"[$GIVEN][$HOME]\"; echo err >&2; exit 3"])
        .env("GIVEN", "yes")
        .stdin("from stdin\n")
        .code(3);
    assert_eq!(run.stdout, "from stdin\n[yes][]\n");
    assert_eq!(run.stderr, "err\n");
    let dir = tempfile::tempdir().expect("temp");
    let run = TestCommand::new("pwd").current_dir(dir.path()).success();
    assert_eq!(
        std::path::Path::new(run.stdout.trim()),
        dir.path().canonicalize().expect("canonical")
    );
}
