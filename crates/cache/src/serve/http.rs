//! The HTTP/1.1 a binary cache needs, over blocking sockets: request heads (parsed by
//! `httparse`), keep-alive, `Expect: 100-continue`, bodies of a declared length, single
//! byte ranges, and responses whose file bodies go out with `sendfile`.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::ops::Range;

/// The largest request head read.
const MAX_HEAD: usize = 16 << 10;

/// A request head.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    /// The path without its query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// HTTP/1.1 (keep-alive by default) or 1.0.
    pub http11: bool,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client wants the connection kept open after this request.
    pub(crate) fn keep_alive(&self) -> bool {
        match self.header("connection") {
            Some(value) if value.eq_ignore_ascii_case("close") => false,
            Some(value) if value.eq_ignore_ascii_case("keep-alive") => true,
            _ => self.http11,
        }
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The client closed the connection (or it timed out) between requests.
    Closed,
    /// Not HTTP, or a head too large: answered with this status, then closed.
    Bad(u16, &'static str),
    /// The connection failed.
    Io,
}

/// Reads the next request head from `reader`.
pub(crate) fn read_request(reader: &mut BufReader<TcpStream>) -> Result<Request, ReadError> {
    let mut head = Vec::with_capacity(1024);
    loop {
        let available = match reader.fill_buf() {
            Ok([]) => {
                return Err(if head.is_empty() {
                    ReadError::Closed
                } else {
                    ReadError::Bad(400, "the request ended inside its head")
                });
            }
            Ok(bytes) => bytes,
            Err(e)
                if head.is_empty()
                    && matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::ConnectionReset
                    ) =>
            {
                return Err(ReadError::Closed);
            }
            Err(_) => return Err(ReadError::Io),
        };
        // Up to and including the blank line that ends the head, if it is here.
        let before = head.len();
        head.extend_from_slice(available);
        let end = find_head_end(&head, before.saturating_sub(3));
        let used = match end {
            Some(end) => end - before,
            None => available.len(),
        };
        reader.consume(used);
        if let Some(end) = end {
            head.truncate(end);
            return parse_head(&head);
        }
        if head.len() > MAX_HEAD {
            return Err(ReadError::Bad(431, "the request head is too large"));
        }
    }
}

fn find_head_end(bytes: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| from + at + 4)
}

fn parse_head(head: &[u8]) -> Result<Request, ReadError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) | Err(_) => {
            return Err(ReadError::Bad(400, "not an HTTP request"));
        }
    }
    let target = parsed.path.unwrap_or("/");
    let path = target
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok(Request {
        method: parsed.method.unwrap_or_default().to_owned(),
        path,
        http11: parsed.version == Some(1),
        headers: parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).trim().to_owned(),
                )
            })
            .collect(),
    })
}

/// The byte range a `Range` header asks of a body of `size` bytes: `Ok(None)` for the
/// whole body (no header, or one this server does not split: several ranges), `Err(())`
/// when it cannot be satisfied.
pub(crate) fn byte_range(header: Option<&str>, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let number = |text: &str| text.trim().parse::<u64>().map_err(|_| ());
    let range = match (start.trim().is_empty(), end.trim().is_empty()) {
        (true, true) => return Err(()),
        // The last `end` bytes.
        (true, false) => size.saturating_sub(number(end)?)..size,
        (false, true) => number(start)?..size,
        (false, false) => {
            let (first, last) = (number(start)?, number(end)?);
            if last < first {
                return Err(());
            }
            first..last.saturating_add(1).min(size)
        }
    };
    if range.start >= size {
        return Err(());
    }
    Ok(Some(range))
}

/// Writes a body, returning how many bytes it wrote.
pub(crate) type WriteBody = Box<dyn FnOnce(&mut dyn Write) -> io::Result<u64> + Send>;

/// A response's body.
pub(crate) enum Payload {
    Bytes(Vec<u8>),
    /// `len` bytes of a file from its current position.
    File(File, u64),
    /// `len` bytes of a stream.
    Stream(Box<dyn Read + Send>, u64),
    /// `len` bytes that a function writes (a NAR made as it is sent).
    Writer(WriteBody, u64),
    /// Bytes of a length not known in advance (a NAR compressed as it is sent), sent
    /// with chunked transfer encoding (what the function returns is not used).
    Chunked(WriteBody),
}

/// A response to write.
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub payload: Payload,
}

impl Response {
    pub(crate) fn new(status: u16, content_type: &str, payload: Payload) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            payload,
        }
    }

    /// A short plain-text answer (errors, refusals).
    pub(crate) fn text(status: u16, message: &str) -> Response {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            Payload::Bytes(format!("{message}\n").into_bytes()),
        )
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    fn len(&self) -> u64 {
        match &self.payload {
            Payload::Bytes(bytes) => bytes.len() as u64,
            Payload::File(_, len) | Payload::Stream(_, len) | Payload::Writer(_, len) => *len,
            Payload::Chunked(_) => 0,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Writes `response`; a `HEAD` gets the headers only. Returns the body bytes sent.
pub(crate) fn write_response(
    stream: &mut TcpStream,
    response: Response,
    head_only: bool,
    keep_alive: bool,
) -> io::Result<u64> {
    let len = response.len();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if matches!(response.payload, Payload::Chunked(_)) {
        head.push_str("Transfer-Encoding: chunked\r\n");
    } else {
        let _ = write!(head, "Content-Length: {len}\r\n");
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    if head_only {
        stream.write_all(head.as_bytes())?;
        return Ok(0);
    }
    match response.payload {
        Payload::Bytes(bytes) => {
            let mut all = head.into_bytes();
            all.extend_from_slice(&bytes);
            stream.write_all(&all)?;
        }
        Payload::File(mut file, len) => {
            stream.write_all(head.as_bytes())?;
            send_file(stream, &mut file, len)?;
        }
        Payload::Stream(body, len) => {
            stream.write_all(head.as_bytes())?;
            let mut out = io::BufWriter::with_capacity(256 << 10, &mut *stream);
            let sent = io::copy(&mut body.take(len), &mut out)?;
            out.flush()?;
            check_sent(sent, len)?;
        }
        Payload::Writer(write, len) => {
            stream.write_all(head.as_bytes())?;
            let mut out = io::BufWriter::with_capacity(256 << 10, &mut *stream);
            let sent = write(&mut out)?;
            out.flush()?;
            check_sent(sent, len)?;
        }
        Payload::Chunked(write) => {
            stream.write_all(head.as_bytes())?;
            let mut out = Chunks {
                out: &mut *stream,
                buffer: Vec::with_capacity(CHUNK),
                sent: 0,
            };
            write(&mut out)?;
            return out.finish();
        }
    }
    Ok(len)
}

/// The payload of one chunk of a chunked body.
const CHUNK: usize = 256 << 10;

/// Chunked transfer encoding: what is written goes out in chunks of `CHUNK` bytes;
/// `finish` sends the last, empty one.
struct Chunks<'a> {
    out: &'a mut TcpStream,
    buffer: Vec<u8>,
    /// Payload bytes sent so far.
    sent: u64,
}

impl Chunks<'_> {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let mut chunk = format!("{:x}\r\n", self.buffer.len()).into_bytes();
        chunk.extend_from_slice(&self.buffer);
        chunk.extend_from_slice(b"\r\n");
        self.sent += self.buffer.len() as u64;
        self.buffer.clear();
        self.out.write_all(&chunk)
    }

    /// Sends the rest and the last chunk; returns the payload bytes sent.
    fn finish(mut self) -> io::Result<u64> {
        self.send()?;
        self.out.write_all(b"0\r\n\r\n")?;
        Ok(self.sent)
    }
}

impl Write for Chunks<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let taken = (CHUNK - self.buffer.len()).min(bytes.len());
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() == CHUNK {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A body shorter than its `Content-Length` must fail the connection, so that the
/// client sees a failure rather than waiting.
fn check_sent(sent: u64, len: u64) -> io::Result<()> {
    if sent == len {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the body ended after {sent} of {len} bytes"),
    ))
}

/// Sends `len` bytes of `file` from its position, in the kernel where it can.
fn send_file(stream: &mut TcpStream, file: &mut File, len: u64) -> io::Result<()> {
    use std::io::Seek;
    let mut offset = file.stream_position()?;
    let end = offset + len;
    while offset < end {
        let chunk = usize::try_from((end - offset).min(1 << 30)).unwrap_or(1 << 30);
        match rustix::fs::sendfile(&*stream, &*file, Some(&mut offset), chunk) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file is shorter than it was",
                ));
            }
            Ok(_) | Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Tells a client that waits (`Expect: 100-continue`) to send its body.
pub(crate) fn send_continue(stream: &mut TcpStream) -> io::Result<()> {
    stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(byte_range(None, 10), Ok(None));
        assert_eq!(byte_range(Some("bytes=0-3"), 10), Ok(Some(0..4)));
        assert_eq!(byte_range(Some("bytes=5-"), 10), Ok(Some(5..10)));
        assert_eq!(byte_range(Some("bytes=-3"), 10), Ok(Some(7..10)));
        assert_eq!(byte_range(Some("bytes=-30"), 10), Ok(Some(0..10)));
        assert_eq!(byte_range(Some("bytes=8-100"), 10), Ok(Some(8..10)));
        assert_eq!(byte_range(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(byte_range(Some("items=0-1"), 10), Ok(None));
        for bad in ["bytes=10-", "bytes=5-2", "bytes=-", "bytes=a-b", "bytes=3"] {
            assert_eq!(byte_range(Some(bad), 10), Err(()), "{bad}");
        }
    }

    #[test]
    fn heads_end_at_the_blank_line() {
        let head = b"GET /x.narinfo?q=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
        let request = parse_head(head).expect("parses");
        assert_eq!(request.path, "/x.narinfo");
        assert!(!request.keep_alive());
        assert_eq!(request.header("HOST"), Some("a"));
        assert_eq!(find_head_end(b"abc\r\n\r\nrest", 0), Some(7));
        assert!(matches!(
            parse_head(b"\x00\x01\r\n\r\n"),
            Err(ReadError::Bad(400, _))
        ));
    }
}
