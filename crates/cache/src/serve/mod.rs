//! `cudapkgs serve`: Nix's binary-cache protocol over HTTP, from a cache (folder or
//! bucket) or straight from a store, whose narinfos are made and signed on the fly and
//! whose NARs are written as they are sent. Optional `PUT` of narinfos and NARs, with a
//! token, for pushes. One thread per connection, at most `max_connections` at once.

mod http;
mod routes;

use std::io::BufReader;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cudapkgs_nix::signature::SecretKey;

use crate::Error;
use crate::backend::Backend;

/// Where answers come from.
pub enum Source {
    /// A cache's objects, served as they are (narinfos signed again with the server's
    /// key, if it has one).
    Cache(Box<dyn Backend>),
    /// The valid paths of a store, opened (read-only) by each connection with `open`.
    Store {
        store_dir: String,
        open: StoreOpener,
    },
}

/// Opens the store a server serves; the error is a message for the client.
pub type StoreOpener = Box<dyn Fn() -> Result<cudapkgs_store::store::Store, String> + Send + Sync>;

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Cache(backend) => f.debug_tuple("Cache").field(backend).finish(),
            Source::Store { store_dir, .. } => f
                .debug_struct("Store")
                .field("store_dir", store_dir)
                .finish_non_exhaustive(),
        }
    }
}

/// How to serve.
#[derive(Debug)]
pub struct Config {
    pub source: Source,
    /// The store folder announced for a cache without `nix-cache-info`.
    pub store_dir: String,
    /// Signs every narinfo served (required to serve a store to clients that check
    /// signatures).
    pub secret_key: Option<SecretKey>,
    /// Accepts `PUT` from clients that send this token (`Authorization: Bearer`, or as
    /// the password of Basic authentication, which Nix sends from a netrc file).
    pub push_token: Option<String>,
    pub max_connections: usize,
    /// The largest body a `PUT` may carry.
    pub max_upload: u64,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    pub priority: u32,
}

/// One request, as logged.
#[derive(Debug, Clone)]
pub struct RequestLog {
    pub peer: SocketAddr,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub bytes: u64,
    pub duration: Duration,
}

/// A bound server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    shared: Arc<routes::Shared>,
}

/// Called with every request served.
pub type Logger = Arc<dyn Fn(&RequestLog) + Send + Sync>;

impl Server {
    /// Binds `address` and prepares the source (a cache's store folder is read from
    /// its `nix-cache-info`).
    pub fn bind(address: SocketAddr, config: Config) -> Result<Server, Error> {
        let listener = TcpListener::bind(address).map_err(|e| Error::io(address.to_string(), e))?;
        let shared = routes::Shared::new(config)?;
        Ok(Server {
            listener,
            shared: Arc::new(shared),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("the listening socket", e))
    }

    /// The store folder the server announces.
    pub fn store_dir(&self) -> &str {
        &self.shared.store_dir
    }

    /// Serves until the process ends.
    pub fn run(self, log: &Logger) -> Result<(), Error> {
        let active = Arc::new(AtomicUsize::new(0));
        for stream in self.listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Ok(peer) = stream.peer_addr() else {
                continue;
            };
            if active.load(Ordering::Relaxed) >= self.shared.config.max_connections {
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = http::write_response(
                    &mut stream,
                    http::Response::text(503, "too many connections; try again")
                        .with_header("Retry-After", "1"),
                    false,
                    false,
                );
                continue;
            }
            active.fetch_add(1, Ordering::Relaxed);
            let (shared, slot, log) = (
                Arc::clone(&self.shared),
                Arc::clone(&active),
                Arc::clone(log),
            );
            let spawned = std::thread::Builder::new()
                .name(format!("serve {peer}"))
                .spawn(move || {
                    serve_connection(&shared, stream, peer, &log);
                    slot.fetch_sub(1, Ordering::Relaxed);
                });
            if spawned.is_err() {
                // The thread was never started: its slot is free again.
                active.fetch_sub(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// Answers the requests of one connection until it closes, idles or fails.
fn serve_connection(shared: &routes::Shared, stream: TcpStream, peer: SocketAddr, log: &Logger) {
    let idle = shared.config.idle_timeout;
    let _ = stream.set_read_timeout(Some(idle));
    let _ = stream.set_write_timeout(Some(idle));
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(64 << 10, stream);
    let mut connection = routes::Connection::default();
    loop {
        let started = Instant::now();
        let request = match http::read_request(&mut reader) {
            Ok(request) => request,
            Err(http::ReadError::Bad(status, why)) => {
                let _ = http::write_response(
                    &mut writer,
                    http::Response::text(status, why),
                    false,
                    false,
                );
                return;
            }
            Err(http::ReadError::Closed | http::ReadError::Io) => return,
        };
        let keep_alive = request.keep_alive();
        let head_only = request.method == "HEAD";
        let (response, body_left_unread) =
            routes::answer(shared, &mut connection, &request, &mut reader, &mut writer);
        let status = response.status;
        let keep_alive = keep_alive && !body_left_unread;
        let sent = http::write_response(&mut writer, response, head_only, keep_alive);
        log(&RequestLog {
            peer,
            method: request.method.clone(),
            path: request.path.clone(),
            status,
            bytes: *sent.as_ref().unwrap_or(&0),
            duration: started.elapsed(),
        });
        if sent.is_err() || !keep_alive {
            return;
        }
    }
}
