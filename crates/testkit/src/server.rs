//! A loopback HTTP/1.1 server for download tests: files from a folder and from memory,
//! `Range` and `HEAD`, a log of the requests, and faults injected on purpose. A thread
//! per connection, no async runtime; everything stops when the [`Server`] is dropped.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A way to answer badly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The whole body promised, only its first N bytes sent, then the connection closed
    /// (a download interrupted).
    Truncate(u64),
    /// The whole body promised, its first N bytes sent, then nothing more with the
    /// connection held open until the client hangs up.
    Stall(u64),
    /// This status (500, 503…) with an empty body.
    Status(u16),
    /// This `Content-Length` declared whatever the body is; the body sent, then the
    /// connection closed.
    ContentLength(u64),
    /// The request read and never answered, until the client hangs up.
    Silent,
    /// 200 without a `Content-Length` and zeros without end, until the client hangs up.
    Endless,
    /// A chunked body of one byte per pause, without end.
    Trickle(Duration),
}

/// When a [`Fault`] applies: to the first requests of each path, or all, of one path
/// or any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    fault: Fault,
    first: Option<usize>,
    path: Option<String>,
}

impl Fault {
    /// For the first `count` requests of each path; later ones are answered well.
    pub fn first(self, count: usize) -> Rule {
        Rule {
            fault: self,
            first: Some(count),
            path: None,
        }
    }

    /// For every request.
    pub fn always(self) -> Rule {
        Rule {
            fault: self,
            first: None,
            path: None,
        }
    }
}

impl Rule {
    /// Only for requests of `path` (as requested, `/…`).
    pub fn on(mut self, path: &str) -> Rule {
        self.path = Some(path.to_owned());
        self
    }
}

#[derive(Debug, Default)]
struct Config {
    root: Option<PathBuf>,
    files: HashMap<String, Arc<Vec<u8>>>,
    fallback: Option<Arc<Vec<u8>>>,
    rules: Vec<Rule>,
    ignore_range: bool,
    throttle: Option<(usize, Duration)>,
}

#[derive(Debug, Default)]
struct State {
    config: Mutex<Config>,
    log: Mutex<Vec<String>>,
    counts: Mutex<HashMap<String, usize>>,
    connections: Mutex<Vec<TcpStream>>,
    stopping: AtomicBool,
}

/// The server; it listens on 127.0.0.1 from [`Server::new`] on and stops when dropped.
#[derive(Debug)]
pub struct Server {
    address: SocketAddr,
    state: Arc<State>,
    accepting: Option<JoinHandle<()>>,
}

impl Server {
    /// A server with nothing to serve yet (every path is a 404).
    pub fn new() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let address = listener.local_addr().expect("address");
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        let accepting = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if let Ok(clone) = stream.try_clone() {
                    shared.connections.lock().expect("lock").push(clone);
                }
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(&shared, stream));
            }
        });
        Server {
            address,
            state,
            accepting: Some(accepting),
        }
    }

    /// A server of the files under `root`, as `scripts/serve-mirror.py` serves them: a
    /// path ending in `/` is that folder's `index.json`, or an HTML listing of the
    /// folder when it has none.
    pub fn serve_dir(root: &Path) -> Server {
        Server::new().root(root)
    }

    fn configure(self, change: impl FnOnce(&mut Config)) -> Server {
        change(&mut self.state.config.lock().expect("lock"));
        self
    }

    /// Serves the files under `root` (after the in-memory ones).
    pub fn root(self, root: &Path) -> Server {
        let root = root.to_owned();
        self.configure(|c| c.root = Some(root))
    }

    /// Serves `body` at `path` (`/…`).
    pub fn file(self, path: &str, body: impl Into<Vec<u8>>) -> Server {
        let (path, body) = (path.to_owned(), Arc::new(body.into()));
        self.configure(|c| {
            c.files.insert(path, body);
        })
    }

    /// Serves `body` at every path nothing else serves.
    pub fn fallback(self, body: impl Into<Vec<u8>>) -> Server {
        let body = Arc::new(body.into());
        self.configure(|c| c.fallback = Some(body))
    }

    /// Answers badly as `rule` says (the first matching rule wins).
    pub fn fault(self, rule: Rule) -> Server {
        self.configure(|c| c.rules.push(rule))
    }

    /// Answers 200 with the whole body whatever `Range` asks, as some servers do.
    pub fn ignore_range(self) -> Server {
        self.configure(|c| c.ignore_range = true)
    }

    /// Sends bodies in slices of `bytes`, with `pause` after each.
    pub fn throttle(self, bytes: usize, pause: Duration) -> Server {
        self.configure(|c| c.throttle = Some((bytes.max(1), pause)))
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The requests so far, in order: `METHOD <path> <Range header or ->`.
    pub fn requests(&self) -> Vec<String> {
        self.state.log.lock().expect("lock").clone()
    }
}

impl Default for Server {
    fn default() -> Server {
        Server::new()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        for stream in self.state.connections.lock().expect("lock").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // Wakes the accepting thread, which then sees `stopping`.
        let _ = TcpStream::connect(self.address);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}

struct Request {
    method: String,
    path: String,
    range: Option<String>,
    close: bool,
}

/// Reads one request's head (and skips its body); `None` at the end of the connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut words = line.split_whitespace();
    let method = words.next()?.to_owned();
    let path = words.next()?.to_owned();
    let http10 = words.next() == Some("HTTP/1.0");
    let (mut range, mut close, mut length) = (None, http10, 0u64);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "range" => range = Some(value.to_owned()),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            "content-length" => length = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    std::io::copy(&mut reader.by_ref().take(length), &mut std::io::sink()).ok()?;
    Some(Request {
        method,
        path,
        range,
        close,
    })
}

/// What a path names.
enum Found {
    Body(Arc<Vec<u8>>),
    File(PathBuf),
    Listing(Vec<u8>),
    Missing,
}

fn find(config: &Config, path: &str) -> Found {
    let path = path.split('?').next().unwrap_or_default();
    if let Some(body) = config.files.get(path) {
        return Found::Body(Arc::clone(body));
    }
    if let Some(root) = &config.root
        && let Some(found) = find_in(root, path)
    {
        return found;
    }
    match &config.fallback {
        Some(body) => Found::Body(Arc::clone(body)),
        None => Found::Missing,
    }
}

fn find_in(root: &Path, path: &str) -> Option<Found> {
    let root = root.canonicalize().ok()?;
    let wanted = root
        .join(path.trim_start_matches('/'))
        .canonicalize()
        .ok()?;
    if !wanted.starts_with(&root) {
        return None;
    }
    if path.ends_with('/') && wanted.is_dir() {
        let page = wanted.join("index.json");
        if page.is_file() {
            return Some(Found::File(page));
        }
        // A folder without one is listed as web servers list folders.
        let mut names: Vec<String> = std::fs::read_dir(&wanted)
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let links = names.iter().fold(String::new(), |mut links, name| {
            let _ = writeln!(links, "<a href=\"{name}\">{name}</a><br/>");
            links
        });
        return Some(Found::Listing(
            format!("<html><body>\n{links}</body></html>\n").into_bytes(),
        ));
    }
    wanted.is_file().then_some(Found::File(wanted))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn head(stream: &mut TcpStream, status: u16, headers: &[(&str, String)]) -> std::io::Result<()> {
    let mut text = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        let _ = write!(text, "{name}: {value}\r\n");
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes())
}

/// `bytes=A-` or `bytes=A-B` against `size`: `Some(Ok((start, end)))` (end excluded),
/// `Some(Err(()))` when not satisfiable, `None` for any other form (answered whole).
fn parse_range(range: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let (start, end) = range.strip_prefix("bytes=")?.split_once('-')?;
    let start: u64 = start.parse().ok()?;
    let end = if end.is_empty() {
        size
    } else {
        end.parse::<u64>().ok()?.saturating_add(1).min(size)
    };
    Some(if start >= size || start >= end {
        Err(())
    } else {
        Ok((start, end))
    })
}

/// Waits until the client hangs up (or the server stops).
fn hold(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    while matches!(stream.read(&mut byte), Ok(n) if n > 0) {}
}

fn serve(state: &State, stream: TcpStream) {
    let Ok(reading) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reading);
    let mut stream = stream;
    while let Some(request) = read_request(&mut reader) {
        if state.stopping.load(Ordering::SeqCst) {
            return;
        }
        match answer(state, &mut stream, &request) {
            Ok(true) if !request.close => {}
            _ => {
                let _ = stream.flush();
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// Answers with a fault that needs no body; `None` for the others.
fn answer_without_body(
    state: &State,
    stream: &mut TcpStream,
    fault: &Fault,
) -> Option<std::io::Result<bool>> {
    let answered = || -> std::io::Result<bool> {
        match fault {
            Fault::Silent => {
                hold(stream);
                Ok(false)
            }
            Fault::Status(status) => {
                head(stream, *status, &[("Content-Length", "0".to_owned())])?;
                Ok(true)
            }
            Fault::Endless => {
                head(stream, 200, &[("Connection", "close".to_owned())])?;
                let chunk = vec![0u8; 64 << 10];
                while !state.stopping.load(Ordering::SeqCst) {
                    stream.write_all(&chunk)?;
                }
                Ok(false)
            }
            Fault::Trickle(pause) => {
                head(stream, 200, &[("Transfer-Encoding", "chunked".to_owned())])?;
                while !state.stopping.load(Ordering::SeqCst) {
                    stream.write_all(b"1\r\n \r\n")?;
                    std::thread::sleep(*pause);
                }
                Ok(false)
            }
            _ => unreachable!("a fault with a body"),
        }
    };
    matches!(
        fault,
        Fault::Silent | Fault::Status(_) | Fault::Endless | Fault::Trickle(_)
    )
    .then(answered)
}

/// Logs `request` and counts it for its path; the count so far, this one included.
fn record(state: &State, request: &Request) -> usize {
    state.log.lock().expect("lock").push(format!(
        "{} {} {}",
        request.method,
        request.path,
        request.range.as_deref().unwrap_or("-")
    ));
    let mut counts = state.counts.lock().expect("lock");
    let count = counts.entry(request.path.clone()).or_default();
    *count += 1;
    *count
}

/// Answers one request; `Ok(true)` when the connection may serve another.
fn answer(state: &State, stream: &mut TcpStream, request: &Request) -> std::io::Result<bool> {
    let count = record(state, request);
    let (found, fault, ignore_range, throttle) = {
        let config = state.config.lock().expect("lock");
        let fault = config
            .rules
            .iter()
            .find(|rule| {
                rule.path.as_ref().is_none_or(|p| *p == request.path)
                    && rule.first.is_none_or(|first| count <= first)
            })
            .map(|rule| rule.fault.clone());
        (
            find(&config, &request.path),
            fault,
            config.ignore_range,
            config.throttle,
        )
    };
    if let Some(done) = fault
        .as_ref()
        .and_then(|f| answer_without_body(state, stream, f))
    {
        return done;
    }
    let body: Body = match found {
        Found::Missing => {
            head(stream, 404, &[("Content-Length", "0".to_owned())])?;
            return Ok(true);
        }
        Found::Listing(page) => {
            head(
                stream,
                200,
                &[
                    ("Content-Type", "text/html".to_owned()),
                    ("Content-Length", page.len().to_string()),
                ],
            )?;
            if request.method != "HEAD" {
                stream.write_all(&page)?;
            }
            return Ok(true);
        }
        Found::Body(bytes) => Body::Memory(bytes),
        Found::File(path) => Body::File(path),
    };
    let size = body.size()?;
    let (mut status, mut start, mut end) = (200, 0, size);
    if let Some(range) = request.range.as_deref().filter(|_| !ignore_range) {
        match parse_range(range, size) {
            Some(Ok((from, to))) => (status, start, end) = (206, from, to),
            Some(Err(())) => {
                head(
                    stream,
                    416,
                    &[
                        ("Content-Range", format!("bytes */{size}")),
                        ("Content-Length", "0".to_owned()),
                    ],
                )?;
                return Ok(true);
            }
            None => {}
        }
    }
    let declared = match fault {
        Some(Fault::ContentLength(length)) => length,
        _ => end - start,
    };
    let mut headers = vec![("Content-Length", declared.to_string())];
    if status == 206 {
        headers.push(("Content-Range", format!("bytes {start}-{}/{size}", end - 1)));
    }
    head(stream, status, &headers)?;
    if request.method == "HEAD" {
        return Ok(true);
    }
    let limit = match fault {
        Some(Fault::Truncate(bytes) | Fault::Stall(bytes)) => bytes.min(end - start),
        _ => end - start,
    };
    body.send(stream, start, limit, throttle)?;
    match fault {
        Some(Fault::Stall(_)) => {
            stream.flush()?;
            hold(stream);
            Ok(false)
        }
        Some(Fault::Truncate(_) | Fault::ContentLength(_)) => Ok(false),
        _ => Ok(true),
    }
}

/// In-memory bytes as a [`std::io::Cursor`] reads them.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

enum Body {
    Memory(Arc<Vec<u8>>),
    File(PathBuf),
}

impl Body {
    fn size(&self) -> std::io::Result<u64> {
        match self {
            Body::Memory(bytes) => Ok(bytes.len() as u64),
            Body::File(path) => Ok(std::fs::metadata(path)?.len()),
        }
    }

    /// Sends `length` bytes from `start`, in slices with pauses when throttled.
    fn send(
        &self,
        stream: &mut TcpStream,
        start: u64,
        length: u64,
        throttle: Option<(usize, Duration)>,
    ) -> std::io::Result<()> {
        let mut source: Box<dyn Read> = match self {
            Body::Memory(bytes) => {
                let mut cursor = std::io::Cursor::new(Shared(Arc::clone(bytes)));
                cursor.set_position(start);
                Box::new(cursor)
            }
            Body::File(path) => {
                let mut file = std::fs::File::open(path)?;
                std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start))?;
                Box::new(file)
            }
        };
        let slice = throttle.map_or(1 << 20, |(bytes, _)| bytes);
        let mut buffer = vec![0u8; slice];
        let mut left = length;
        while left > 0 {
            let want = usize::try_from(left.min(slice as u64)).expect("slice");
            let got = source.read(&mut buffer[..want])?;
            if got == 0 {
                break;
            }
            stream.write_all(&buffer[..got])?;
            left -= got as u64;
            if let Some((_, pause)) = throttle {
                std::thread::sleep(pause);
            }
        }
        Ok(())
    }
}
