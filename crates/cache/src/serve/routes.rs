//! What the server answers: `nix-cache-info`, narinfos and NARs from the source, and
//! pushes of narinfos and NARs into a cache.

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use cudapkgs_nix::cache_info::CacheInfo;
use cudapkgs_nix::narinfo::{Compression, NarInfo};
use cudapkgs_nix::store_path;
use cudapkgs_store::store::Store;

use super::http::{self, Payload, Request, Response, byte_range};
use super::{Config, Source};
use crate::backend::{Body, check_key};
use crate::error::with_causes;
use crate::verify::{HashingWriter, sha256_field};
use crate::{CACHE_INFO_KEY, Error, NARINFO_LIMIT, narinfo_key, records};

const NARINFO_TYPE: &str = "text/x-nix-narinfo";

/// The largest build record taken or served.
const RECORD_LIMIT: u64 = 4 << 20;
const NAR_TYPE: &str = "application/x-nix-nar";

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub store_dir: String,
    cache_info: String,
    /// A store's paths by hash part, reread when a lookup misses (at most once a second).
    index: RwLock<(HashMap<String, String>, Option<Instant>)>,
}

/// What one connection keeps between its requests.
#[derive(Debug, Default)]
pub(crate) struct Connection {
    store: Option<Store>,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Result<Shared, Error> {
        let store_dir = match &config.source {
            Source::Store { store_dir, .. } => store_dir.trim_end_matches('/').to_owned(),
            Source::Cache(backend) => match backend.get_small(CACHE_INFO_KEY, 64 << 10)? {
                Some(bytes) => {
                    CacheInfo::parse(&String::from_utf8_lossy(&bytes))
                        .map_err(|e| {
                            Error::untrusted(
                                format!("{}/{CACHE_INFO_KEY}", backend.describe()),
                                e.to_string(),
                            )
                        })?
                        .store_dir
                }
                None => config.store_dir.trim_end_matches('/').to_owned(),
            },
        };
        let mut info = CacheInfo::new(&store_dir);
        info.priority = config.priority;
        Ok(Shared {
            cache_info: info.render(),
            store_dir,
            config,
            index: RwLock::new((HashMap::new(), None)),
        })
    }

    /// The store path whose hash part is `hash`, if the store has it.
    fn store_path(&self, store: &Store, hash: &str) -> Result<Option<String>, Error> {
        let read = |index: &(HashMap<String, String>, _)| index.0.get(hash).cloned();
        if let Some(path) = read(
            &self
                .index
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ) {
            return Ok(Some(path));
        }
        let mut index = self
            .index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stale = index
            .1
            .is_none_or(|at| at.elapsed() > Duration::from_secs(1));
        if stale {
            index.0 = store
                .valid_paths()?
                .into_iter()
                .map(|path| (store_path::hash_part_of(&path).to_owned(), path))
                .collect();
            index.1 = Some(Instant::now());
        }
        Ok(read(&index))
    }
}

/// The response to `request`; the flag says that a request body was left unread (the
/// connection must then close).
pub(crate) fn answer(
    shared: &Shared,
    connection: &mut Connection,
    request: &Request,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> (Response, bool) {
    let has_body = request
        .header("content-length")
        .is_some_and(|len| len != "0")
        || request.header("transfer-encoding").is_some();
    let outcome = match request.method.as_str() {
        "GET" | "HEAD" => read_route(shared, connection, request),
        "PUT" => return put_route(shared, request, reader, writer),
        _ => Ok(Response::text(405, "only GET, HEAD and PUT are served")
            .with_header("Allow", "GET, HEAD, PUT")),
    };
    let response = outcome.unwrap_or_else(|error| {
        let status = match error {
            Error::Remote { .. } | Error::Unreachable { .. } => 502,
            _ => 500,
        };
        Response::text(status, &with_causes(&error))
    });
    (response, has_body)
}

/// The hash part of a narinfo path (`/<hash>.narinfo`).
fn narinfo_hash(path: &str) -> Option<&str> {
    path.strip_prefix('/')?
        .strip_suffix(".narinfo")
        .filter(|hash| store_path::is_hash_part(hash))
}

fn read_route(
    shared: &Shared,
    connection: &mut Connection,
    request: &Request,
) -> Result<Response, Error> {
    let path = request.path.as_str();
    if path == "/nix-cache-info" {
        return Ok(Response::new(
            200,
            "text/x-nix-cache-info",
            Payload::Bytes(shared.cache_info.clone().into_bytes()),
        ));
    }
    if let Some(hash) = narinfo_hash(path) {
        return match &shared.config.source {
            Source::Cache(backend) => cache_narinfo(shared, backend.as_ref(), hash),
            Source::Store { .. } => store_narinfo(shared, open_store(shared, connection)?, hash),
        };
    }
    if let Some(build) = record_build_key(path) {
        return match &shared.config.source {
            Source::Cache(backend) => cache_record(backend.as_ref(), build),
            Source::Store { .. } => {
                Ok(store_record(shared, open_store(shared, connection)?, build))
            }
        };
    }
    if let Some(key) = path.strip_prefix('/').filter(|k| k.starts_with("nar/")) {
        if check_key(key).is_err() {
            return Ok(not_found());
        }
        return match &shared.config.source {
            Source::Cache(backend) => cache_nar(backend.as_ref(), key, request),
            Source::Store { .. } => {
                store_nar(shared, open_store(shared, connection)?, key, request)
            }
        };
    }
    Ok(not_found())
}

fn not_found() -> Response {
    Response::text(404, "not found")
}

/// The build key of a record's path (`/build/<key>.record`).
fn record_build_key(path: &str) -> Option<&str> {
    path.strip_prefix("/build/")?.strip_suffix(".record")
}

/// A cache's record file, as it is (its signature is the pusher's).
fn cache_record(backend: &dyn crate::backend::Backend, build: &str) -> Result<Response, Error> {
    if check_key(&records::record_key(build)).is_err() {
        return Ok(not_found());
    }
    match backend.get_small(&records::record_key(build), RECORD_LIMIT)? {
        Some(bytes) => Ok(Response::new(200, "text/plain", Payload::Bytes(bytes))),
        None => Ok(not_found()),
    }
}

/// A store's record, signed now with the server's key (unsigned records are useless to
/// clients, so without a key there are none).
fn store_record(shared: &Shared, store: &Store, build: &str) -> Response {
    let Some(secret) = &shared.config.secret_key else {
        return not_found();
    };
    let Ok(Some(text)) = store.build_record(build) else {
        return not_found();
    };
    match records::render(build, &text, secret) {
        Ok(file) => Response::new(200, "text/plain", Payload::Bytes(file.into_bytes())),
        Err(_) => not_found(),
    }
}

fn open_store<'a>(shared: &Shared, connection: &'a mut Connection) -> Result<&'a Store, Error> {
    let Source::Store { open, .. } = &shared.config.source else {
        unreachable!("a store is opened only to serve one");
    };
    if connection.store.is_none() {
        connection.store = Some(open().map_err(Error::Unsupported)?);
    }
    Ok(connection.store.as_ref().expect("opened above"))
}

fn cache_narinfo(
    shared: &Shared,
    backend: &dyn crate::backend::Backend,
    hash: &str,
) -> Result<Response, Error> {
    let Some(bytes) = backend.get_small(&narinfo_key(hash), NARINFO_LIMIT)? else {
        return Ok(not_found());
    };
    let Some(key) = &shared.config.secret_key else {
        return Ok(Response::new(200, NARINFO_TYPE, Payload::Bytes(bytes)));
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut info = NarInfo::parse(&text, &shared.store_dir).map_err(|e| {
        Error::untrusted(
            format!("{}/{}", backend.describe(), narinfo_key(hash)),
            e.to_string(),
        )
    })?;
    key.sign_narinfo(&mut info, &shared.store_dir);
    Ok(Response::new(
        200,
        NARINFO_TYPE,
        Payload::Bytes(info.render().into_bytes()),
    ))
}

fn store_narinfo(shared: &Shared, store: &Store, hash: &str) -> Result<Response, Error> {
    let Some(path) = shared.store_path(store, hash)? else {
        return Ok(not_found());
    };
    let Some(info) = store.info(&path)? else {
        return Ok(not_found());
    };
    let mut narinfo = NarInfo {
        url: format!("nar/{hash}.nar"),
        compression: Compression::None,
        file_hash: Some(info.nar_hash.clone()),
        file_size: Some(info.nar_size),
        nar_hash: info.nar_hash,
        nar_size: info.nar_size,
        references: info
            .references
            .iter()
            .map(|r| r.rsplit('/').next().unwrap_or(r).to_owned())
            .collect(),
        deriver: None,
        sigs: Vec::new(),
        ca: None,
        other: Vec::new(),
        store_path: path,
    };
    if let Some(key) = &shared.config.secret_key {
        key.sign_narinfo(&mut narinfo, &shared.store_dir);
    }
    Ok(Response::new(
        200,
        NARINFO_TYPE,
        Payload::Bytes(narinfo.render().into_bytes()),
    ))
}

/// A full or partial (206) answer of `size` bytes, or 416 for a range outside them.
fn ranged(
    request: &Request,
    size: u64,
    body: impl FnOnce(std::ops::Range<u64>) -> Result<Payload, Error>,
) -> Result<Response, Error> {
    let Ok(range) = byte_range(request.header("range"), size) else {
        return Ok(Response::text(416, "the range is outside the file")
            .with_header("Content-Range", format!("bytes */{size}")));
    };
    let (status, range) = match range {
        Some(range) => (206, range),
        None => (200, 0..size),
    };
    let content_range = format!(
        "bytes {}-{}/{size}",
        range.start,
        range.end.saturating_sub(1)
    );
    let mut response =
        Response::new(status, NAR_TYPE, body(range)?).with_header("Accept-Ranges", "bytes");
    if status == 206 {
        response = response.with_header("Content-Range", content_range);
    }
    Ok(response)
}

fn cache_nar(
    backend: &dyn crate::backend::Backend,
    key: &str,
    request: &Request,
) -> Result<Response, Error> {
    let Some(size) = backend.size(key)? else {
        return Ok(not_found());
    };
    if request.method == "HEAD" {
        return ranged(request, size, |range| {
            Ok(Payload::Stream(
                Box::new(std::io::empty()),
                range.end - range.start,
            ))
        });
    }
    ranged(request, size, |range| {
        let object = backend
            .get(key, Some(range))?
            .ok_or_else(|| Error::Missing(format!("{key} was removed while it was asked for")))?;
        Ok(match object.body {
            Body::File(file) => Payload::File(file, object.len),
            Body::Stream(stream) => Payload::Stream(stream, object.len),
        })
    })
}

fn store_nar(
    shared: &Shared,
    store: &Store,
    key: &str,
    request: &Request,
) -> Result<Response, Error> {
    let Some(hash) = key
        .strip_prefix("nar/")
        .and_then(|name| name.strip_suffix(".nar"))
        .filter(|hash| store_path::is_hash_part(hash))
    else {
        return Ok(not_found());
    };
    let Some(path) = shared.store_path(store, hash)? else {
        return Ok(not_found());
    };
    let Some(info) = store.info(&path)? else {
        return Ok(not_found());
    };
    let physical = store.physical(&path);
    // Clients that take zstd (Nix from 2.14 on) get the NAR compressed as it is made,
    // at zstd's fastest level: a store is served on a network that is slower than that.
    // Ranges (resumed downloads) are served from the plain NAR.
    let takes_zstd = request
        .header("accept-encoding")
        .is_some_and(|value| value.split(',').any(|v| v.trim().starts_with("zstd")));
    if takes_zstd && request.header("range").is_none() {
        let write = move |out: &mut dyn Write| -> std::io::Result<u64> {
            let mut encoder = zstd::stream::write::Encoder::new(out, 1)?;
            cudapkgs_nix::nar::dump(&physical, &mut encoder)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            encoder.finish()?;
            Ok(0)
        };
        return Ok(
            Response::new(200, NAR_TYPE, Payload::Chunked(Box::new(write)))
                .with_header("Content-Encoding", "zstd")
                .with_header("Vary", "Accept-Encoding"),
        );
    }
    ranged(request, info.nar_size, move |range| {
        let len = range.end - range.start;
        Ok(Payload::Writer(
            Box::new(move |out: &mut dyn Write| {
                let mut window = Window {
                    out,
                    skip: range.start,
                    left: len,
                };
                let dumped = cudapkgs_nix::nar::dump(&physical, &mut window);
                match dumped {
                    // Stopped on purpose at the end of the range.
                    Err(_) if window.left == 0 => Ok(len),
                    Err(error) => Err(std::io::Error::other(error.to_string())),
                    Ok(()) => Ok(len - window.left),
                }
            }),
            len,
        ))
    })
}

/// Passes on the bytes of a range of what is written through it, and fails once the
/// range is complete (to stop the writer early).
struct Window<'a> {
    out: &'a mut dyn Write,
    skip: u64,
    left: u64,
}

impl Write for Window<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("the range is complete"));
        }
        let skipped = usize::try_from(self.skip.min(buf.len() as u64)).unwrap_or(buf.len());
        self.skip -= skipped as u64;
        let rest = &buf[skipped..];
        let take = usize::try_from(self.left.min(rest.len() as u64)).unwrap_or(rest.len());
        self.out.write_all(&rest[..take])?;
        self.left -= take as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Whether the request carries the push token.
fn authorized(shared: &Shared, request: &Request) -> bool {
    let Some(token) = &shared.config.push_token else {
        return false;
    };
    let Some(value) = request.header("authorization") else {
        return false;
    };
    let given = if let Some(bearer) = value.strip_prefix("Bearer ") {
        bearer.trim().as_bytes().to_vec()
    } else if let Some(basic) = value.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .unwrap_or_default();
        match decoded.iter().position(|&b| b == b':') {
            Some(colon) => decoded[colon + 1..].to_vec(),
            None => return false,
        }
    } else {
        return false;
    };
    constant_time_eq(&given, token.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Answers a `PUT`; the flag says the body was not read.
fn put_route(
    shared: &Shared,
    request: &Request,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> (Response, bool) {
    let refuse = |status, message: &str| (Response::text(status, message), true);
    let Source::Cache(backend) = &shared.config.source else {
        return refuse(405, "this server serves a store; push to a cache instead");
    };
    if shared.config.push_token.is_none() {
        return refuse(403, "this cache does not take pushes");
    }
    if !authorized(shared, request) {
        return (
            Response::text(401, "a push needs the cache's token")
                .with_header("WWW-Authenticate", "Bearer"),
            true,
        );
    }
    let key = request.path.trim_start_matches('/');
    let narinfo = narinfo_hash(&request.path);
    let record = record_build_key(&request.path);
    let is_nar = key.starts_with("nar/") && key.contains(".nar") && check_key(key).is_ok();
    if narinfo.is_none() && record.is_none() && !is_nar {
        return refuse(403, "only narinfos, NARs and build records can be pushed");
    }
    if request.header("transfer-encoding").is_some() {
        return refuse(411, "send the body with a Content-Length");
    }
    let Some(len) = request
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return refuse(411, "send the body with a Content-Length");
    };
    let limit = if narinfo.is_some() {
        NARINFO_LIMIT
    } else if record.is_some() {
        RECORD_LIMIT
    } else {
        shared.config.max_upload
    };
    if len > limit {
        return refuse(413, &format!("at most {limit} bytes may be pushed here"));
    }
    if request
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        && http::send_continue(writer).is_err()
    {
        return refuse(400, "the connection failed");
    }
    let mut body = reader.take(len);
    let stored = match (narinfo, record) {
        (Some(hash), _) => put_narinfo(shared, backend.as_ref(), hash, &mut body, len),
        (None, Some(build)) => put_record(shared, backend.as_ref(), build, &mut body, len),
        (None, None) => put_nar(backend.as_ref(), key, &mut body),
    };
    let unread = body.limit() > 0;
    match stored {
        Ok(()) => (Response::text(201, "stored"), unread),
        Err((status, message)) => (Response::text(status, &message), true),
    }
}

/// A request's body, of `len` bytes by its Content-Length.
fn read_body(body: &mut impl Read, len: u64) -> Result<Vec<u8>, (u16, String)> {
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    body.read_to_end(&mut bytes)
        .map_err(|e| (400, format!("reading the body failed: {e}")))?;
    Ok(bytes)
}

fn put_narinfo(
    shared: &Shared,
    backend: &dyn crate::backend::Backend,
    hash: &str,
    body: &mut impl Read,
    len: u64,
) -> Result<(), (u16, String)> {
    let bytes = read_body(body, len)?;
    if bytes.len() as u64 != len {
        return Err((
            400,
            "the body is shorter than its Content-Length".to_owned(),
        ));
    }
    let text =
        String::from_utf8(bytes).map_err(|_| (400, "the narinfo is not UTF-8".to_owned()))?;
    let info =
        NarInfo::parse(&text, &shared.store_dir).map_err(|e| (400, format!("bad narinfo: {e}")))?;
    if info.hash_part() != hash {
        return Err((
            400,
            format!("the narinfo describes {}, not {hash}", info.store_path),
        ));
    }
    // A narinfo only after its NAR: a cache never points at a file it lacks.
    match backend.size(&info.url) {
        Ok(Some(_)) => {}
        Ok(None) => return Err((409, format!("push {} before its narinfo", info.url))),
        Err(e) => return Err((502, with_causes(&e))),
    }
    backend
        .put_bytes(&narinfo_key(hash), text.as_bytes(), NARINFO_TYPE)
        .map_err(|e| (500, with_causes(&e)))
}

/// A build record: well formed, under its own key, and only once the cache has a
/// narinfo for every output it names (clients take outputs by the record alone).
fn put_record(
    shared: &Shared,
    backend: &dyn crate::backend::Backend,
    build: &str,
    body: &mut impl Read,
    len: u64,
) -> Result<(), (u16, String)> {
    let bytes = read_body(body, len)?;
    let text = String::from_utf8(bytes).map_err(|_| (400, "the record is not UTF-8".to_owned()))?;
    let paths = records::outputs_of(&text, build).map_err(|e| (400, e.to_string()))?;
    for path in paths {
        let hash = store_path::hash_part_of(&path);
        if !store_path::is_hash_part(hash) || !path.starts_with(&shared.store_dir) {
            return Err((
                400,
                format!("the record names {path}, not a path of this cache"),
            ));
        }
        match backend.size(&narinfo_key(hash)) {
            Ok(Some(_)) => {}
            Ok(None) => return Err((409, format!("push {path} before the record naming it"))),
            Err(e) => return Err((502, with_causes(&e))),
        }
    }
    backend
        .put_bytes(&records::record_key(build), text.as_bytes(), "text/plain")
        .map_err(|e| (500, with_causes(&e)))
}

fn put_nar(
    backend: &dyn crate::backend::Backend,
    key: &str,
    body: &mut impl Read,
) -> Result<(), (u16, String)> {
    let failed = |e: Error| (500, with_causes(&e));
    let temporary = crate::backend::temporary_file(backend).map_err(failed)?;
    let (file, temporary) = temporary.into_parts();
    let mut out = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
    std::io::copy(body, &mut out).map_err(|e| (400, format!("reading the body failed: {e}")))?;
    let (buffered, digest, _) = out.finish();
    buffered.into_inner().map_err(|e| (500, with_causes(&e)))?;
    // A NAR named by its file hash (as Nix and cudapkgs name them) must have that hash.
    let name = key.trim_start_matches("nar/");
    let stem = name.split('.').next().unwrap_or_default();
    if stem.len() == 52 && store_path::is_nix32(stem) {
        let got = sha256_field(&digest);
        if got.trim_start_matches("sha256:") != stem {
            return Err((
                400,
                format!("the body's hash is {got}, not the one its name gives"),
            ));
        }
    }
    backend
        .put_temporary(key, temporary, NAR_TYPE)
        .map_err(failed)
}
