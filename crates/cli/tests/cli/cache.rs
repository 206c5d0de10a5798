//! End-to-end tests of `cudapkgs cache keygen`, `push`, `serve` and `copy` against a real
//! Nix 2.8 (Debian's nix-bin): Nix substitutes from our server and checks our signatures,
//! refuses them when the key is not trusted, and pushes to and fetches from it; caches
//! Nix wrote are served and copied; tampered caches are refused with nothing registered.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;

use common::s;
use common::serve::Serve;

/// Whether a real Nix is here; under CI its absence is a failure, elsewhere the calling
/// test says it is skipped.
fn have_nix() -> bool {
    common::tool("nix").is_some()
}

/// A private world for one test: our store, Nix's home (its narinfo cache), keys.
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        World {
            dir: tempfile::tempdir().expect("temp"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Our `/nix/store` store, under `ours/`.
    fn ours(&self) -> PathBuf {
        self.path("ours")
    }

    /// Runs cudapkgs with `vars` only.
    fn cudapkgs(args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
        common::run_with(vars, args)
    }

    /// Runs cudapkgs on our store; it must succeed; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let root = self.ours();
        let all = [args, &common::rooted_store_args(&root)].concat();
        let (code, stdout, stderr) = World::cudapkgs(&all, &[]);
        assert_eq!(code, 0, "cudapkgs {args:?}: {stderr}");
        stdout
    }

    /// Runs cudapkgs on our store; returns its exit code and stderr.
    fn fails(&self, args: &[&str]) -> (i32, String) {
        let root = self.ours();
        let all = [args, &common::rooted_store_args(&root)].concat();
        let (code, _, stderr) = World::cudapkgs(&all, &[]);
        (code, stderr)
    }

    /// A Nix command with no substituter, no narinfo caching, and a private home.
    fn nix(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        let home = self.path("nix-home");
        std::fs::create_dir_all(&home).expect("mkdir");
        command
            .env("HOME", &home)
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env(
                "NIX_CONFIG",
                "substituters = \nexperimental-features = nix-command\n\
                 narinfo-cache-negative-ttl = 0\nnarinfo-cache-positive-ttl = 0",
            );
        command
    }

    /// A key pair made by `cudapkgs cache keygen`: (secret file, public key text).
    fn keygen(&self, name: &str) -> (PathBuf, String) {
        let secret = self.path(&format!("{name}.sk"));
        let public = self.path(&format!("{name}.pk"));
        let (code, stdout, stderr) =
            World::cudapkgs(&["cache", "keygen", name, s(&secret), s(&public)], &[]);
        assert_eq!(code, 0, "{stderr}");
        let text = std::fs::read_to_string(&public).expect("public key");
        assert_eq!(stdout.trim(), text);
        (secret, text)
    }

    /// Adds a dependency and a package that refers to it; returns (package, dependency).
    fn package(&self, name: &str) -> (String, String) {
        let dep = self.path(&format!("{name}-dep"));
        std::fs::create_dir_all(dep.join("lib")).expect("mkdir");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dep.join("lib/libdep.so"), bytes).expect("write");
        std::os::unix::fs::symlink("libdep.so", dep.join("lib/libdep.so.1")).expect("link");
        let dep_path = self
            .ok(&["store", "add", "--name", &format!("{name}-dep"), s(&dep)])
            .trim()
            .to_owned();
        let pkg = self.path(name);
        std::fs::create_dir_all(pkg.join("bin")).expect("mkdir");
        std::fs::write(
            pkg.join("bin/run"),
            format!("#!/bin/sh\nexec {dep_path}/lib/libdep.so.1 \"$@\"\n"),
        )
        .expect("write");
        std::fs::set_permissions(
            pkg.join("bin/run"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let pkg_path = self
            .ok(&[
                "store",
                "add",
                "--name",
                name,
                "--input",
                &dep_path,
                s(&pkg),
            ])
            .trim()
            .to_owned();
        (pkg_path, dep_path)
    }

    /// `nix copy --from URL --to local?root=ROOT PATH` trusting `public_key`.
    fn nix_copy_from(
        &self,
        url: &str,
        root: &Path,
        public_key: &str,
        path: &str,
    ) -> std::process::Output {
        self.nix("nix")
            .args(["copy", "--option", "trusted-public-keys", public_key])
            .args(["--from", url])
            .args(["--to", &format!("local?root={}", root.display()), path])
            .output()
            .expect("nix copy")
    }

    /// Our store's record of `path`: (NAR hash, references).
    fn info(&self, path: &str) -> (String, Vec<String>) {
        let info: serde_json::Value =
            serde_json::from_str(&self.ok(&["--json", "path-info", path])).expect("json");
        let refs = info[0]["references"]
            .as_array()
            .expect("refs")
            .iter()
            .map(|r| r.as_str().expect("ref").to_owned())
            .collect();
        (info[0]["narHash"].as_str().expect("hash").to_owned(), refs)
    }

    fn valid(&self, path: &str) -> bool {
        self.fails(&["path-info", path]).0 == 0
    }
}

impl Serve {
    fn start(world: &World, args: &[&str]) -> Serve {
        Serve::start_with(world, args, &[])
    }

    fn start_with(world: &World, args: &[&str], vars: &[(&str, &str)]) -> Serve {
        Serve::spawn(world.dir.path(), args, vars)
    }

    fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .expect("port")
            .parse()
            .expect("number")
    }

    /// Sends a raw request; returns (status, head, body).
    fn request(&self, raw: &[u8]) -> (u16, String, Vec<u8>) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port())).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(raw).expect("send");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let end = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        let head = String::from_utf8_lossy(&answer[..end]).into_owned();
        let status = head[9..12].parse().expect("status");
        (status, head, answer[end + 4..].to_vec())
    }

    fn get(&self, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
        self.request(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n")
                .as_bytes(),
        )
    }
}

fn hash_part(path: &str) -> &str {
    &path.rsplit('/').next().expect("base")[..32]
}

/// Pushes `paths` to `cache` signed with `secret`.
fn push(world: &World, cache: &Path, secret: &Path, extra: &[&str], paths: &[&str]) -> String {
    let to = format!("file://{}", cache.display());
    let args = [
        &["push", "--to", &to, "--secret-key-file", s(secret)][..],
        extra,
        paths,
    ]
    .concat();
    world.ok(&args)
}

#[test]
fn keygen_refuses_to_overwrite_and_writes_a_private_secret() {
    let world = World::new();
    let (secret, public) = world.keygen("cache.example.org-1");
    assert!(public.starts_with("cache.example.org-1:"));
    let mode = std::fs::metadata(&secret)
        .expect("secret")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let before = std::fs::read(&secret).expect("read");
    let other = world.path("other.pk");
    let (code, _, stderr) =
        World::cudapkgs(&["cache", "keygen", "again", s(&secret), s(&other)], &[]);
    common::assert_refused(code, &stderr, "exists already");
    assert_eq!(std::fs::read(&secret).expect("read"), before);
    assert!(!other.exists());
}

/// The path as Nix registered it under `theirs` has our NAR hash, our references and
/// our signature.
fn assert_same_as_ours(world: &World, theirs: &Path, path: &str, source: &str) {
    let store = format!("local?root={}", theirs.display());
    let info: serde_json::Value = serde_json::from_slice(
        &world
            .nix("nix")
            .args(["path-info", "--json", "--store", &store, path])
            .output()
            .expect("path-info")
            .stdout,
    )
    .expect("json");
    let entry = &info[0];
    let (hash, refs) = world.info(path);
    // The SRI notation `nix path-info --json` writes.
    assert_eq!(entry["narHash"].as_str(), Some(hash.as_str()), "{source}");
    let theirs_refs: Vec<&str> = entry["references"]
        .as_array()
        .expect("refs")
        .iter()
        .map(|r| r.as_str().expect("ref"))
        .collect();
    assert_eq!(theirs_refs, refs, "{source}");
    assert!(
        entry["signatures"]
            .as_array()
            .expect("sigs")
            .iter()
            .any(|s| s.as_str().expect("sig").starts_with("test-1:")),
        "{source}: {entry}"
    );
}

#[test]
fn nix_substitutes_from_serve_and_verifies_our_signatures() {
    if !have_nix() {
        return;
    }
    let world = World::new();
    let (secret, public) = world.keygen("test-1");
    let (pkg, dep) = world.package("hello");
    let cache = world.path("cache");
    let pushed = push(&world, &cache, &secret, &[], &[&pkg]);
    assert!(pushed.starts_with("pushed 2 paths"), "{pushed}");
    // Present paths are skipped.
    let again = push(&world, &cache, &secret, &[], &[&pkg]);
    assert!(
        again.starts_with("pushed 0 paths") && again.contains("2 already there"),
        "{again}"
    );

    for source in ["cache", "store"] {
        let cache_url = format!("file://{}", cache.display());
        let ours = world.ours();
        let serve = match source {
            "cache" => Serve::start(&world, &["--cache", &cache_url]),
            _ => Serve::start(
                &world,
                &[
                    "--store",
                    "--store-dir",
                    "/nix/store",
                    "--root",
                    s(&ours),
                    "--secret-key-file",
                    s(&secret),
                ],
            ),
        };
        let theirs = world.path(&format!("theirs-{source}"));
        let copied = world.nix_copy_from(&serve.url, &theirs, &public, &pkg);
        assert!(
            copied.status.success(),
            "{source}: {}",
            String::from_utf8_lossy(&copied.stderr)
        );
        let verify = world
            .nix("nix")
            .args(["store", "verify", "--sigs-needed", "1", "-r"])
            .args(["--option", "trusted-public-keys", &public])
            .args(["--store", &format!("local?root={}", theirs.display()), &pkg])
            .output()
            .expect("nix store verify");
        assert!(
            verify.status.success(),
            "{source}: {}",
            String::from_utf8_lossy(&verify.stderr)
        );
        for path in [&pkg, &dep] {
            assert_same_as_ours(&world, &theirs, path, source);
        }
        let run = std::fs::read(theirs.join(pkg.trim_start_matches('/')).join("bin/run"))
            .expect("copied file");
        assert!(String::from_utf8_lossy(&run).contains(&dep));
    }
}

#[test]
fn nix_refuses_our_narinfo_without_a_trusted_key() {
    if !have_nix() {
        return;
    }
    let world = World::new();
    let (secret, _) = world.keygen("test-1");
    let (_, other_public) = world.keygen("test-2");
    // The right name with another key's bytes: a forgery Nix must see through.
    let (_, impostor) = {
        let w = World::new();
        w.keygen("test-1")
    };
    let (pkg, _) = world.package("hello");
    let cache = world.path("cache");
    push(&world, &cache, &secret, &[], &[&pkg]);
    let serve = Serve::start(&world, &["--cache", &format!("file://{}", cache.display())]);
    for (case, key) in [
        ("another key", other_public.as_str()),
        ("the trusted name, other bytes", impostor.as_str()),
    ] {
        let theirs = world.path(&format!("theirs-{}", key.len() + case.len()));
        let copied = world.nix_copy_from(&serve.url, &theirs, key, &pkg);
        assert!(
            !copied.status.success(),
            "{case}: Nix took a path it cannot trust"
        );
        let stderr = String::from_utf8_lossy(&copied.stderr);
        assert!(stderr.contains("signature"), "{case}: {stderr}");
        assert!(!theirs.join(pkg.trim_start_matches('/')).exists(), "{case}");
    }
}

/// Adds a tree to a private Nix store under `root` with `nix-store --add`.
fn nix_add(world: &World, root: &Path, tree: &Path) -> String {
    let output = world
        .nix("nix-store")
        .args([
            "--store",
            &format!("local?root={}", root.display()),
            "--add",
        ])
        .arg(tree)
        .output()
        .expect("nix-store --add");
    cudapkgs_testkit::assert_succeeded(&output);
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[test]
fn caches_nix_wrote_are_served_and_copied_by_both() {
    if !have_nix() {
        return;
    }
    let world = World::new();
    let nix_secret = world.path("nix.sk");
    let nix_public = world.path("nix.pk");
    let generated = world
        .nix("nix-store")
        .args([
            "--generate-binary-cache-key",
            "nix-1",
            s(&nix_secret),
            s(&nix_public),
        ])
        .output()
        .expect("keygen");
    assert!(generated.status.success());
    let public = std::fs::read_to_string(&nix_public).expect("pk");
    let tree = world.path("tree");
    std::fs::create_dir_all(tree.join("share")).expect("mkdir");
    std::fs::write(tree.join("share/data"), vec![42u8; 300_000]).expect("write");
    std::os::unix::fs::symlink("share/data", tree.join("link")).expect("link");
    let first = world.path("nix-first");
    let path = nix_add(&world, &first, &tree);
    // Nix's default compression (xz), and zstd.
    for compression in ["xz", "zstd"] {
        let cache = world.path(&format!("nix-cache-{compression}"));
        let to = format!(
            "file://{}?secret-key={}&compression={compression}",
            cache.display(),
            nix_secret.display()
        );
        let pushed = world
            .nix("nix")
            .args([
                "copy",
                "--from",
                &format!("local?root={}", first.display()),
                "--to",
                &to,
                &path,
            ])
            .output()
            .expect("nix copy --to");
        cudapkgs_testkit::assert_succeeded(&pushed);
        let serve = Serve::start(&world, &["--cache", &format!("file://{}", cache.display())]);
        let back = world.path(&format!("nix-back-{compression}"));
        let copied = world.nix_copy_from(&serve.url, &back, &public, &path);
        cudapkgs_testkit::assert_succeeded(&copied);
        assert_eq!(
            std::fs::read(back.join(path.trim_start_matches('/')).join("share/data"))
                .expect("data"),
            vec![42u8; 300_000]
        );
        // cudapkgs copies the Nix-signed path into its own store, from the server and
        // from the folder.
        let from_http = world.ok(&[
            "copy",
            "--from",
            &serve.url,
            "--trusted-public-key",
            s(&nix_public),
            &path,
        ]);
        assert!(
            from_http.starts_with("copied 1 path") || from_http.contains("1 already there"),
            "{from_http}"
        );
        assert!(world.valid(&path));
        let data = world
            .ours()
            .join(path.trim_start_matches('/'))
            .join("share/data");
        assert_eq!(std::fs::read(data).expect("ours"), vec![42u8; 300_000]);
    }
    let verify = world.ok(&["store", "verify"]);
    assert!(verify.contains("0 problems"), "{verify}");
}

/// A pushed package, its cache folder and the keys: for tampering.
struct Tampered {
    world: World,
    pkg: String,
    dep: String,
    cache: PathBuf,
    secret: PathBuf,
    public: String,
}

fn pushed_package(compression: &str) -> Tampered {
    let world = World::new();
    let (secret, public) = world.keygen("test-1");
    let (pkg, dep) = world.package("hello");
    let cache = world.path("cache");
    push(
        &world,
        &cache,
        &secret,
        &["--compression", compression],
        &[&pkg],
    );
    // A fresh store for the copies: ours keeps the originals.
    std::fs::rename(world.ours(), world.path("original")).expect("move the store away");
    Tampered {
        world,
        pkg,
        dep,
        cache,
        secret,
        public,
    }
}

impl Tampered {
    fn narinfo_path(&self, path: &str) -> PathBuf {
        self.cache.join(format!("{}.narinfo", hash_part(path)))
    }

    fn narinfo(&self, path: &str) -> String {
        std::fs::read_to_string(self.narinfo_path(path)).expect("narinfo")
    }

    /// Rewrites a narinfo line by line with `edit` (`None` drops the line).
    fn edit(&self, path: &str, edit: impl Fn(&str) -> Option<String>) {
        let text: String = self
            .narinfo(path)
            .lines()
            .filter_map(|line| edit(line).map(|l| format!("{l}\n")))
            .collect();
        std::fs::write(self.narinfo_path(path), text).expect("write");
    }

    /// The NAR file of `path` in the cache.
    fn nar_file(&self, path: &str) -> PathBuf {
        let url = self
            .narinfo(path)
            .lines()
            .find_map(|l| l.strip_prefix("URL: ").map(str::to_owned))
            .expect("URL");
        self.cache.join(url)
    }

    /// `cudapkgs copy` of the package from `from`: must fail with `expected` in its
    /// message and leave the store without either path and with nothing unregistered.
    fn refused(&self, from: &str, expected: &str) {
        let (code, stderr) = self.world.fails(&[
            "copy",
            "--from",
            from,
            "--trusted-public-key",
            &self.public,
            "--stall-timeout",
            "2",
            &self.pkg,
        ]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(expected), "wanted {expected:?}: {stderr}");
        assert!(!self.world.valid(&self.pkg));
        let folder = self.world.ours().join("nix/store");
        let stray: Vec<_> = std::fs::read_dir(&folder)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| Path::new(n).extension().is_none_or(|e| e != "lock"))
                    .collect()
            })
            .unwrap_or_default();
        let allowed: Vec<&str> = [&self.dep]
            .iter()
            .map(|d| d.rsplit('/').next().expect("base"))
            .collect();
        assert!(
            stray.iter().all(|n| allowed.contains(&n.as_str())),
            "left in the store: {stray:?}"
        );
    }

    fn file_url(&self) -> String {
        format!("file://{}", self.cache.display())
    }

    /// Signs a narinfo again with the trusted key after an edit (so that only the
    /// edited field is wrong).
    fn resign(&self, path: &str) {
        self.edit(path, |l| (!l.starts_with("Sig: ")).then(|| l.to_owned()));
        let text = self.narinfo(path);
        let secret = std::fs::read_to_string(&self.secret).expect("sk");
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
                .unwrap_or_default()
        };
        let references: Vec<String> = field("References")
            .split_whitespace()
            .map(|r| format!("/nix/store/{r}"))
            .collect();
        let fingerprint = format!(
            "1;{};{};{};{}",
            field("StorePath"),
            field("NarHash"),
            field("NarSize"),
            references.join(",")
        );
        let signature = sign_with_nix(&secret, &fingerprint);
        let mut text = text;
        let _ = writeln!(text, "Sig: {signature}");
        std::fs::write(self.narinfo_path(path), text).expect("write");
    }
}

/// Signs `message` with a Nix secret key, through the library's own code path being the
/// thing under test elsewhere: here Python's standard library cannot do ed25519, so the
/// signature comes from `cudapkgs-nix` (checked against Nix in the tests above).
fn sign_with_nix(secret: &str, message: &str) -> String {
    cudapkgs_nix::signature::SecretKey::parse(secret)
        .expect("secret")
        .sign(message.as_bytes())
}

/// How a case damages a pushed cache.
type Tamper = Box<dyn Fn(&Tampered)>;

/// Each case: its name, the compression pushed with, the damage, and what the refusal
/// must say.
#[allow(clippy::too_many_lines, reason = "a table of cases")]
fn damaged_caches() -> Vec<(&'static str, &'static str, Tamper, &'static str)> {
    vec![
        (
            "forged signature",
            "zstd",
            tamper(|t: &Tampered| {
                // A valid signature by another key, under the trusted key's name.
                let impostor = cudapkgs_nix::signature::SecretKey::generate("test-1").expect("key");
                let text = t.narinfo(&t.dep);
                let info =
                    cudapkgs_nix::narinfo::NarInfo::parse(&text, "/nix/store").expect("parse");
                let signature = impostor.sign(info.fingerprint("/nix/store").as_bytes());
                t.edit(&t.dep, |l| {
                    Some(if l.starts_with("Sig: ") {
                        format!("Sig: {signature}")
                    } else {
                        l.to_owned()
                    })
                });
            }),
            "no valid signature by a trusted key",
        ),
        (
            "unsigned",
            "zstd",
            tamper(|t: &Tampered| {
                t.edit(&t.pkg, |l| (!l.starts_with("Sig: ")).then(|| l.to_owned()));
            }),
            "signed by: nobody",
        ),
        (
            "a reference dropped, signature kept",
            "zstd",
            tamper(|t: &Tampered| {
                t.edit(&t.pkg, |l| {
                    Some(if l.starts_with("References: ") {
                        "References: ".to_owned()
                    } else {
                        l.to_owned()
                    })
                });
            }),
            "no valid signature",
        ),
        (
            "another tree's NAR under the same name",
            "none",
            tamper(|t: &Tampered| {
                let other = t.nar_file(&t.pkg);
                std::fs::copy(other, t.nar_file(&t.dep)).expect("copy");
                t.edit(&t.dep, |l| (!l.starts_with("File")).then(|| l.to_owned()));
            }),
            "the narinfo says",
        ),
        (
            "NarSize too small, re-signed",
            "zstd",
            tamper(|t: &Tampered| {
                t.edit(&t.dep, |l| {
                    Some(match l.strip_prefix("NarSize: ") {
                        Some(size) => {
                            format!("NarSize: {}", size.parse::<u64>().expect("size") - 8)
                        }
                        None => l.to_owned(),
                    })
                });
                t.resign(&t.dep);
            }),
            "more than the",
        ),
        (
            "NarSize too large, re-signed",
            "zstd",
            tamper(|t: &Tampered| {
                t.edit(&t.dep, |l| {
                    Some(match l.strip_prefix("NarSize: ") {
                        Some(size) => {
                            format!("NarSize: {}", size.parse::<u64>().expect("size") + 8)
                        }
                        None => l.to_owned(),
                    })
                });
                t.resign(&t.dep);
            }),
            "the narinfo says",
        ),
        (
            "truncated NAR",
            "zstd",
            tamper(|t: &Tampered| {
                let nar = t.nar_file(&t.dep);
                let bytes = std::fs::read(&nar).expect("read");
                std::fs::write(&nar, &bytes[..bytes.len() / 2]).expect("write");
            }),
            "reading the NAR failed",
        ),
        (
            "oversized NAR",
            "none",
            tamper(|t: &Tampered| {
                let nar = t.nar_file(&t.dep);
                let mut bytes = std::fs::read(&nar).expect("read");
                bytes.extend_from_slice(&[0; 64]);
                std::fs::write(&nar, bytes).expect("write");
                t.edit(&t.dep, |l| (!l.starts_with("File")).then(|| l.to_owned()));
            }),
            "more than the",
        ),
        (
            "file hash wrong",
            "zstd",
            tamper(|t: &Tampered| {
                t.edit(&t.dep, |l| {
                    Some(if l.starts_with("FileHash: ") {
                        "FileHash: sha256:0000000000000000000000000000000000000000000000000000"
                            .to_owned()
                    } else {
                        l.to_owned()
                    })
                });
            }),
            "the narinfo says sha256:0000",
        ),
        (
            "URL with ..",
            "zstd",
            tamper(|t: &Tampered| {
                t.edit(&t.dep, |l| {
                    Some(if l.starts_with("URL: ") {
                        "URL: nar/../../etc/passwd".to_owned()
                    } else {
                        l.to_owned()
                    })
                });
            }),
            "not a relative path of plain names",
        ),
        (
            "absolute URL",
            "zstd",
            tamper(|t: &Tampered| {
                t.edit(&t.dep, |l| {
                    Some(if l.starts_with("URL: ") {
                        "URL: /etc/passwd".to_owned()
                    } else {
                        l.to_owned()
                    })
                });
            }),
            "not a relative path of plain names",
        ),
        (
            "malformed line",
            "zstd",
            tamper(|t: &Tampered| {
                t.edit(&t.dep, |l| {
                    Some(if l.starts_with("NarSize: ") {
                        "NarSize 12".to_owned()
                    } else {
                        l.to_owned()
                    })
                });
            }),
            "line 7",
        ),
        (
            "narinfo of another path",
            "zstd",
            tamper(|t: &Tampered| {
                std::fs::copy(t.narinfo_path(&t.pkg), t.narinfo_path(&t.dep)).expect("copy");
            }),
            "another path",
        ),
    ]
}

fn tamper(damage: impl Fn(&Tampered) + 'static) -> Tamper {
    Box::new(damage)
}

#[test]
fn copy_refuses_forged_unsigned_and_damaged_caches() {
    for (case, compression, damage, expected) in damaged_caches() {
        let tampered = pushed_package(compression);
        damage(&tampered);
        eprintln!("case: {case}");
        tampered.refused(&tampered.file_url(), expected);
        // Through the server, the same refusal.
        let serve = Serve::start(&tampered.world, &["--cache", &tampered.file_url()]);
        tampered.refused(&serve.url, expected);
    }
}

#[test]
fn copy_gives_up_on_a_server_that_stalls() {
    let world = World::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Accepts connections and never answers.
    let _stalling = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let (code, stderr) = world.fails(&[
        "copy",
        "--from",
        &format!("http://127.0.0.1:{port}"),
        "--trusted-public-key",
        "k:lt0M+wvFcLypgp4pfYQyyaXoXIQh4UzYydo5/+j3Z3s=",
        "--stall-timeout",
        "1",
        "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-x",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(stderr.contains("127.0.0.1"), "{stderr}");
}

#[test]
fn serve_speaks_the_protocol() {
    let world = World::new();
    let (secret, _) = world.keygen("test-1");
    let (pkg, _) = world.package("hello");
    let cache = world.path("cache");
    push(&world, &cache, &secret, &[], &[&pkg]);
    let token = world.path("token");
    std::fs::write(&token, "0123456789abcdef-token\n").expect("write");
    let serve = Serve::start(
        &world,
        &[
            "--cache",
            &format!("file://{}", cache.display()),
            "--push-token-file",
            s(&token),
        ],
    );
    // Objects are readable by every user (another web server may serve the folder).
    for folder in [cache.clone(), cache.join("nar")] {
        for entry in std::fs::read_dir(&folder)
            .expect("cache")
            .filter_map(Result::ok)
        {
            let meta = entry.metadata().expect("metadata");
            if meta.is_file() {
                assert_eq!(
                    meta.permissions().mode() & 0o777,
                    0o644,
                    "{}",
                    entry.path().display()
                );
            }
        }
    }
    let (status, _, body) = serve.get("/nix-cache-info", "");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        b"StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n"
    );
    let narinfo_url = format!("/{}.narinfo", hash_part(&pkg));
    let (status, head, body) = serve.get(&narinfo_url, "");
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: text/x-nix-narinfo"), "{head}");
    let text = String::from_utf8(body).expect("text");
    assert_eq!(
        text,
        std::fs::read_to_string(cache.join(&narinfo_url[1..])).expect("file")
    );
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix("URL: "))
        .expect("URL")
        .to_owned();
    let nar = std::fs::read(cache.join(&url)).expect("nar");
    // HEAD: headers only.
    let (status, head, body) = serve.request(
        format!("HEAD /{url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!((status, body.len()), (200, 0));
    assert!(
        head.contains(&format!("Content-Length: {}", nar.len())),
        "{head}"
    );
    assert!(head.contains("Accept-Ranges: bytes"), "{head}");
    // Ranges.
    let (status, head, body) = serve.get(&format!("/{url}"), "Range: bytes=10-19\r\n");
    assert_eq!(status, 206);
    assert_eq!(body, &nar[10..20]);
    assert!(
        head.contains(&format!("Content-Range: bytes 10-19/{}", nar.len())),
        "{head}"
    );
    let (status, _, body) = serve.get(&format!("/{url}"), "Range: bytes=-5\r\n");
    assert_eq!((status, body.as_slice()), (206, &nar[nar.len() - 5..]));
    let (status, _, _) = serve.get(
        &format!("/{url}"),
        &format!("Range: bytes={}-\r\n", nar.len()),
    );
    assert_eq!(status, 416);
    // Absent and hostile paths.
    for path in [
        "/00000000000000000000000000000000.narinfo",
        "/nar/../nix-cache-info",
        "/nar/.cudapkgs-upload-1/x",
        "/etc/passwd",
        "/nar/",
    ] {
        let (status, _, _) = serve.get(path, "");
        assert_eq!(status, 404, "{path}");
    }
    // Keep-alive: two requests on one connection.
    let (status, _, body) = serve.request(
        b"GET /nix-cache-info HTTP/1.1\r\nHost: x\r\n\r\nGET /nix-cache-info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8_lossy(&body).matches("StoreDir").count(),
        2
    );
}

#[test]
fn serve_takes_pushes_only_with_the_token_and_nar_first() {
    let world = World::new();
    let (secret, _) = world.keygen("test-1");
    let (pkg, _) = world.package("hello");
    let cache = world.path("cache");
    push(&world, &cache, &secret, &[], &[&pkg]);
    let token = world.path("token");
    std::fs::write(&token, "0123456789abcdef-token\n").expect("write");
    let serve = Serve::start(
        &world,
        &[
            "--cache",
            &format!("file://{}", cache.display()),
            "--push-token-file",
            s(&token),
        ],
    );
    let narinfo_name = format!("{}.narinfo", hash_part(&pkg));
    let text = std::fs::read_to_string(cache.join(&narinfo_name)).expect("narinfo");
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix("URL: "))
        .expect("URL")
        .to_owned();
    let put = |path: &str, auth: &str, body: &[u8]| {
        let mut raw = format!(
            "PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n{auth}\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        serve.request(&raw).0
    };
    let bearer = "Authorization: Bearer 0123456789abcdef-token\r\n";
    let new_hash = "11111111111111111111111111111111";
    let narinfo = text
        .replace(hash_part(&pkg), new_hash)
        .replace(&url, "nar/missing.nar.zst");
    assert_eq!(
        put(&format!("/{new_hash}.narinfo"), "", narinfo.as_bytes()),
        401
    );
    assert_eq!(
        put(
            &format!("/{new_hash}.narinfo"),
            "Authorization: Bearer wrong-token-0123\r\n",
            narinfo.as_bytes()
        ),
        401
    );
    assert_eq!(
        put(&format!("/{new_hash}.narinfo"), bearer, narinfo.as_bytes()),
        409
    );
    assert_eq!(
        put(&format!("/{new_hash}.narinfo"), bearer, b"garbage\n"),
        400
    );
    let misnamed = format!("/nar/{}.nar.zst", "1".repeat(52));
    assert_eq!(put(&misnamed, bearer, b"not those bytes"), 400);
    assert!(!cache.join(&misnamed[1..]).exists());
    assert_eq!(
        put("/nix-cache-info", bearer, b"StoreDir: /elsewhere\n"),
        403
    );
    assert_eq!(put("/nar/plain.nar", bearer, b"bytes"), 201);
    assert_eq!(
        std::fs::read(cache.join("nar/plain.nar")).expect("pushed"),
        b"bytes"
    );
    // Basic authentication with the token as password (what Nix sends from a netrc file).
    let basic = format!(
        "Authorization: Basic {}\r\n",
        base64_of("nix:0123456789abcdef-token")
    );
    let narinfo = text
        .replace(hash_part(&pkg), new_hash)
        .replace(&url, "nar/plain.nar");
    assert_eq!(
        put(&format!("/{new_hash}.narinfo"), &basic, narinfo.as_bytes()),
        201
    );
    assert!(cache.join(format!("{new_hash}.narinfo")).is_file());
    // Nothing of the uploads is left beside the objects.
    let hidden: Vec<_> = std::fs::read_dir(&cache)
        .expect("cache")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".cudapkgs-upload-")
        })
        .flat_map(|e| {
            std::fs::read_dir(e.path())
                .expect("work")
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

fn base64_of(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn nix_pushes_to_serve_with_the_token_from_netrc() {
    if !have_nix() {
        return;
    }
    let world = World::new();
    let nix_secret = world.path("nix.sk");
    let nix_public = world.path("nix.pk");
    assert!(
        world
            .nix("nix-store")
            .args([
                "--generate-binary-cache-key",
                "nix-1",
                s(&nix_secret),
                s(&nix_public)
            ])
            .status()
            .expect("keygen")
            .success()
    );
    let tree = world.path("tree");
    std::fs::create_dir_all(&tree).expect("mkdir");
    std::fs::write(
        tree.join("big"),
        (0..2_000_000u32)
            .map(|i| (i % 253) as u8)
            .collect::<Vec<_>>(),
    )
    .expect("write");
    let theirs = world.path("theirs");
    let path = nix_add(&world, &theirs, &tree);
    let token = world.path("token");
    std::fs::write(&token, "0123456789abcdef-token").expect("write");
    let cache = world.path("cache");
    std::fs::create_dir_all(&cache).expect("mkdir");
    let serve = Serve::start(
        &world,
        &[
            "--cache",
            &format!("file://{}", cache.display()),
            "--push-token-file",
            s(&token),
        ],
    );
    let netrc = world.path("netrc");
    std::fs::write(
        &netrc,
        "machine 127.0.0.1 login nix password 0123456789abcdef-token\n",
    )
    .expect("write");
    let pushed = world
        .nix("nix")
        .args(["copy", "--option", "netrc-file", s(&netrc)])
        .args(["--from", &format!("local?root={}", theirs.display())])
        .args([
            "--to",
            &format!(
                "{}?secret-key={}&compression=zstd",
                serve.url,
                nix_secret.display()
            ),
            &path,
        ])
        .output()
        .expect("nix copy --to http");
    cudapkgs_testkit::assert_succeeded(&pushed);
    assert!(
        cache
            .join(format!("{}.narinfo", hash_part(&path)))
            .is_file()
    );
    let copied = world.ok(&[
        "copy",
        "--from",
        &serve.url,
        "--trusted-public-key",
        s(&nix_public),
        &path,
    ]);
    assert!(copied.starts_with("copied 1 path"), "{copied}");
}

#[test]
fn concurrent_pushes_of_one_path_agree() {
    let world = World::new();
    let (secret, public) = world.keygen("test-1");
    let (pkg, _) = world.package("hello");
    let cache = world.path("cache");
    let to = format!("file://{}", cache.display());
    let root = world.ours();
    let children: Vec<Child> = (0..4)
        .map(|_| {
            common::cudapkgs()
                .inherit_env()
                .command()
                .args(["push", "--to", &to, "--secret-key-file", s(&secret), &pkg])
                .args(["--store-dir", "/nix/store", "--root", s(&root)])
                .env_clear()
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("push")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("wait");
        cudapkgs_testkit::assert_succeeded(&output);
    }
    std::fs::rename(world.ours(), world.path("original")).expect("move");
    let copied = world.ok(&["copy", "--from", &to, "--trusted-public-key", &public, &pkg]);
    assert!(copied.starts_with("copied 2 paths"), "{copied}");
}

#[test]
fn a_killed_push_leaves_no_narinfo_without_its_nar() {
    let world = World::new();
    let (secret, public) = world.keygen("test-1");
    let big = world.path("big");
    std::fs::create_dir_all(&big).expect("mkdir");
    // Hard to compress, so that xz -9 takes a while.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..24 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect();
    std::fs::write(big.join("blob"), noise).expect("write");
    let path = world.ok(&["store", "add", s(&big)]).trim().to_owned();
    let cache = world.path("cache");
    let to = format!("file://{}", cache.display());
    let root = world.ours();
    let mut child = common::cudapkgs()
        .inherit_env()
        .command()
        .args([
            "push",
            "--to",
            &to,
            "--secret-key-file",
            s(&secret),
            "--compression",
            "xz",
            "--compression-level",
            "9",
            &path,
        ])
        .args(["--store-dir", "/nix/store", "--root", s(&root)])
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("push");
    // Until its work folder holds part of the NAR.
    let started = Instant::now();
    let partial = || {
        std::fs::read_dir(&cache)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".cudapkgs-upload-")
                    && std::fs::read_dir(e.path())
                        .ok()
                        .into_iter()
                        .flatten()
                        .filter_map(Result::ok)
                        .any(|f| f.metadata().is_ok_and(|m| m.len() > 0))
            })
    };
    while !partial() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(partial(), "the push never started writing");
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    assert!(!cache.join(format!("{}.narinfo", hash_part(&path))).exists());
    // The next push finishes the job and removes the dead one's work folder.
    let pushed = world.ok(&["push", "--to", &to, "--secret-key-file", s(&secret), &path]);
    assert!(pushed.starts_with("pushed 1 path"), "{pushed}");
    let left: Vec<_> = std::fs::read_dir(&cache)
        .expect("cache")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    std::fs::rename(world.ours(), world.path("original")).expect("move");
    let copied = world.ok(&[
        "copy",
        "--from",
        &to,
        "--trusted-public-key",
        &public,
        &path,
    ]);
    assert!(copied.starts_with("copied 1 path"), "{copied}");
}

#[test]
fn a_killed_server_leaves_no_partial_upload() {
    let world = World::new();
    let cache = world.path("cache");
    std::fs::create_dir_all(&cache).expect("mkdir");
    let token = world.path("token");
    std::fs::write(&token, "0123456789abcdef-token").expect("write");
    let url = format!("file://{}", cache.display());
    let args = ["--cache", url.as_str(), "--push-token-file", s(&token)];
    let mut serve = Serve::start(&world, &args);
    let mut upload = TcpStream::connect(("127.0.0.1", serve.port())).expect("connect");
    let head = "PUT /nar/big.nar HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\
                Authorization: Bearer 0123456789abcdef-token\r\n\r\n";
    upload.write_all(head.as_bytes()).expect("head");
    upload
        .write_all(&vec![1u8; 1 << 20])
        .expect("part of the body");
    // Until the server has written part of it into its work folder.
    let started = Instant::now();
    let written = || {
        std::fs::read_dir(&cache)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".cudapkgs-upload-")
            })
            .any(|e| std::fs::read_dir(e.path()).into_iter().flatten().count() > 0)
    };
    while !written() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(written(), "the upload never reached the work folder");
    serve.child.kill().expect("kill -9");
    serve.child.wait().expect("wait");
    assert!(!cache.join("nar/big.nar").exists());
    // The next server that takes pushes removes the dead one's work folder.
    let again = Serve::start(&world, &args);
    let (status, _, _) = again.get("/nar/big.nar", "");
    assert_eq!(status, 404);
    let left: Vec<_> = std::fs::read_dir(&cache)
        .expect("cache")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn serve_bounds_its_connections() {
    let world = World::new();
    let cache = world.path("cache");
    std::fs::create_dir_all(&cache).expect("mkdir");
    let url = format!("file://{}", cache.display());
    let serve = Serve::start(&world, &["--cache", &url, "--max-connections", "2"]);
    // Two connections held open (keep-alive, idle) take every slot.
    let held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", serve.port())).expect("connect");
            stream
                .write_all(b"GET /nix-cache-info HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("send");
            let mut buffer = [0; 512];
            let n = stream.read(&mut buffer).expect("answer");
            assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
            stream
        })
        .collect();
    let (status, refusal, _) = serve.get("/nix-cache-info", "");
    assert_eq!(status, 503, "{refusal}");
    assert!(refusal.contains("Retry-After"), "{refusal}");
    drop(held);
    // Freed slots serve again.
    let started = Instant::now();
    loop {
        let (status, _, _) = serve.get("/nix-cache-info", "");
        if status == 200 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "still {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn copy_needs_no_narinfo_for_references_already_in_the_store() {
    let t = pushed_package("zstd");
    let from = t.file_url();
    let first = t.world.ok(&[
        "copy",
        "--from",
        &from,
        "--trusted-public-key",
        &t.public,
        &t.dep,
    ]);
    assert!(first.starts_with("copied 1 path"), "{first}");
    std::fs::remove_file(t.narinfo_path(&t.dep)).expect("remove");
    let second = t.world.ok(&[
        "copy",
        "--from",
        &from,
        "--trusted-public-key",
        &t.public,
        &t.pkg,
    ]);
    assert!(
        second.starts_with("copied 1 path") && second.contains("1 already there"),
        "{second}"
    );
    let verify = t.world.ok(&["store", "verify"]);
    assert!(
        verify.contains("2 valid paths checked, 0 problems"),
        "{verify}"
    );
}

#[test]
fn trusted_keys_come_from_the_flags_else_the_environment() {
    let t = pushed_package("zstd");
    let (_, other) = t.world.keygen("other-1");
    let root = t.world.ours();
    let from = t.file_url();
    let copy = |flags: &[&str], env: &[(&str, &str)]| {
        let store = ["--store-dir", "/nix/store", "--root", s(&root)];
        let args = [
            &["copy", "--from", from.as_str()][..],
            flags,
            &[&t.dep],
            &store,
        ]
        .concat();
        World::cudapkgs(&args, env)
    };
    // The flag wins over the environment: the wrong key named on the command line.
    let env = [("CUDAPKGS_TRUSTED_PUBLIC_KEYS", t.public.as_str())];
    let (code, _, stderr) = copy(&["--trusted-public-key", &other], &env);
    common::assert_refused(code, &stderr, "trusted: other-1");
    let (code, stdout, stderr) = copy(&[], &env);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("copied 1 path"), "{stdout}");
    // A key file works as well as its text; a bad key is named.
    let (code, _, stderr) = copy(&["--trusted-public-key", "not-a-key"], &[]);
    common::assert_refused(code, &stderr, "--trusted-public-key");
    let (code, _, stderr) = copy(&[], &[]);
    common::assert_refused(code, &stderr, "no trusted public key");
}

/// The payload of a chunked body.
fn unchunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size = usize::from_str_radix(std::str::from_utf8(&body[..line_end]).expect("hex"), 16)
            .expect("chunk size");
        body = &body[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        assert_eq!(&body[size..size + 2], b"\r\n");
        body = &body[size + 2..];
    }
}

#[test]
fn serve_store_writes_nars_as_it_sends_them() {
    let world = World::new();
    let (secret, _) = world.keygen("test-1");
    let (_, dep) = world.package("hello");
    let ours = world.ours();
    let serve = Serve::start(
        &world,
        &[
            "--store",
            "--store-dir",
            "/nix/store",
            "--root",
            s(&ours),
            "--secret-key-file",
            s(&secret),
        ],
    );
    let nar = common::cudapkgs()
        .inherit_env()
        .command()
        .args(["nar", "dump"])
        .arg(ours.join(dep.trim_start_matches('/')))
        .output()
        .expect("nar dump")
        .stdout;
    let url = format!("/nar/{}.nar", hash_part(&dep));
    let (status, head, body) = serve.get(&url, "");
    assert_eq!(status, 200);
    assert!(
        head.contains(&format!("Content-Length: {}", nar.len())),
        "{head}"
    );
    assert!(body == nar, "the NAR served differs from `nar dump`");
    let (status, _, body) = serve.get(&url, "Range: bytes=100-299\r\n");
    assert_eq!((status, body.as_slice()), (206, &nar[100..300]));
    // A client that takes zstd gets it, compressed as it is made, in chunks.
    let (status, head, body) = serve.get(&url, "Accept-Encoding: gzip, zstd\r\n");
    assert_eq!(status, 200);
    assert!(
        head.contains("Content-Encoding: zstd") && head.contains("Transfer-Encoding: chunked"),
        "{head}"
    );
    let compressed = unchunk(&body);
    assert!(compressed.len() < nar.len() / 2);
    let decoded = zstd::stream::decode_all(&compressed[..]).expect("zstd");
    assert!(decoded == nar, "the zstd stream holds another NAR");
    // Ranges stay plain.
    let (status, head, body) = serve.get(&url, "Accept-Encoding: zstd\r\nRange: bytes=0-9\r\n");
    assert_eq!((status, body.as_slice()), (206, &nar[..10]));
    assert!(!head.contains("Content-Encoding"), "{head}");
    // Pushes go to caches, not to a store.
    let (status, _, _) = serve.request(
        b"PUT /nar/x.nar HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
    );
    assert_eq!(status, 405);
}

/// Builds, with a real Nix in the private store under `root`, a derivation whose output
/// is named by its derivation (input-addressed), not by its contents.
fn nix_build(world: &World, root: &Path) -> String {
    let output = world
        .nix("nix-build")
        .args(["--store", &format!("local?root={}", root.display())])
        .args(["--option", "extra-sandbox-paths", "/bin /lib /lib64 /usr", "--no-out-link"])
        .args([
            "-E",
            r#"derivation { name = "built"; system = "x86_64-linux"; PATH = "/usr/bin:/bin"; builder = "/bin/sh"; args = [ "-c" "mkdir $out; echo built > $out/file" ]; }"#,
        ])
        .output()
        .expect("nix-build");
    cudapkgs_testkit::assert_succeeded(&output);
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[test]
fn serve_signs_a_nix_cache_with_its_key_and_copy_refuses_paths_named_by_derivations() {
    if !have_nix() {
        return;
    }
    let world = World::new();
    let (secret, public) = world.keygen("ours-1");
    let theirs = world.path("theirs");
    let built = nix_build(&world, &theirs);
    // An unsigned cache written by Nix.
    let cache = world.path("nix-cache");
    let pushed = world
        .nix("nix")
        .args([
            "copy",
            "--from",
            &format!("local?root={}", theirs.display()),
        ])
        .args([
            "--to",
            &format!("file://{}?compression=zstd", cache.display()),
            &built,
        ])
        .output()
        .expect("nix copy --to");
    cudapkgs_testkit::assert_succeeded(&pushed);
    let unsigned = Serve::start(&world, &["--cache", &format!("file://{}", cache.display())]);
    let refused = world.nix_copy_from(&unsigned.url, &world.path("refused"), &public, &built);
    assert!(
        !refused.status.success(),
        "Nix took an unsigned, input-addressed path"
    );
    // Served with our key, the same narinfos are signed on the fly and Nix takes them.
    let signed = Serve::start(
        &world,
        &[
            "--cache",
            &format!("file://{}", cache.display()),
            "--secret-key-file",
            s(&secret),
        ],
    );
    let copied = world.nix_copy_from(&signed.url, &world.path("copied"), &public, &built);
    cudapkgs_testkit::assert_succeeded(&copied);
    // cudapkgs' store holds paths named by their contents only: a clear refusal, nothing
    // registered.
    let (code, stderr) = world.fails(&[
        "copy",
        "--from",
        &signed.url,
        "--trusted-public-key",
        &public,
        &built,
    ]);
    common::assert_refused(code, &stderr, "not named by its contents");
    assert!(!world.valid(&built));
}

#[test]
fn push_and_copy_answer_in_json() {
    let world = World::new();
    let (secret, public) = world.keygen("test-1");
    let (pkg, dep) = world.package("hello");
    let cache = world.path("cache");
    let to = format!("file://{}", cache.display());
    let pushed = world.ok(&[
        "--json",
        "push",
        "--to",
        &to,
        "--secret-key-file",
        s(&secret),
        &pkg,
    ]);
    common::schema::assert_fits("push", &pushed);
    let report: serde_json::Value = serde_json::from_str(&pushed).expect("one JSON document");
    let pushed: Vec<&str> = report["pushed"]
        .as_array()
        .expect("pushed")
        .iter()
        .map(|p| p["path"].as_str().expect("path"))
        .collect();
    // References first.
    assert_eq!(pushed, [dep.as_str(), pkg.as_str()]);
    assert!(report["pushed"][0]["file_size"].as_u64().expect("size") > 0);
    std::fs::rename(world.ours(), world.path("original")).expect("move");
    let copied = world.ok(&[
        "--json",
        "copy",
        "--from",
        &to,
        "--trusted-public-key",
        &public,
        &pkg,
    ]);
    common::schema::assert_fits("copy", &copied);
    let report: serde_json::Value = serde_json::from_str(&copied).expect("one JSON document");
    assert_eq!(report["copied"].as_array().expect("copied").len(), 2);
    assert_eq!(report["copied"][1]["signed_by"], "test-1");
    // A failure is one JSON document too.
    let root = world.ours();
    let (code, stdout, _) = World::cudapkgs(
        &[
            "--json",
            "copy",
            "--from",
            "ftp://x",
            "--trusted-public-key",
            &public,
            &pkg,
            "--store-dir",
            "/nix/store",
            "--root",
            s(&root),
        ],
        &[],
    );
    assert_eq!(code, 2);
    common::schema::assert_fits("error", &stdout);
    let error: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("message")
            .contains("unknown kind of cache")
    );
}

#[test]
fn copy_downloads_side_by_side_and_registers_references_first() {
    let world = World::new();
    let (secret, public) = world.keygen("test-1");
    // A chain a <- b <- c and a fan of four beside it, all under one top path.
    let mut previous: Option<String> = None;
    let mut inputs = Vec::new();
    for name in ["a", "b", "c", "d", "e", "f", "g"] {
        let tree = world.path(name);
        std::fs::create_dir_all(&tree).expect("mkdir");
        let mention = if name <= "c" {
            previous.clone().unwrap_or_default()
        } else {
            String::new()
        };
        std::fs::write(
            tree.join("data"),
            format!("{name} {mention}\n").repeat(20_000),
        )
        .expect("write");
        let mut args = vec!["store", "add", "--name", name];
        if name <= "c" {
            if let Some(p) = &previous {
                args.extend(["--input", p.as_str()]);
            }
        }
        args.push(s(&tree));
        let path = world.ok(&args).trim().to_owned();
        if name <= "c" {
            previous = Some(path.clone());
        }
        inputs.push(path);
    }
    let top = world.path("top");
    std::fs::create_dir_all(&top).expect("mkdir");
    std::fs::write(top.join("refs"), inputs.join("\n")).expect("write");
    let mut args = vec!["store", "add", "--name", "top"];
    for input in &inputs {
        args.extend(["--input", input.as_str()]);
    }
    args.push(s(&top));
    let top_path = world.ok(&args).trim().to_owned();
    let cache = world.path("cache");
    push(&world, &cache, &secret, &["--jobs", "3"], &[&top_path]);
    std::fs::rename(world.ours(), world.path("original")).expect("move");
    let to = format!("file://{}", cache.display());
    let copied = world.ok(&[
        "--json",
        "copy",
        "--from",
        &to,
        "--trusted-public-key",
        &public,
        "--jobs",
        "3",
        &top_path,
    ]);
    let report: serde_json::Value = serde_json::from_str(&copied).expect("json");
    let order: Vec<&str> = report["copied"]
        .as_array()
        .expect("copied")
        .iter()
        .map(|c| c["path"].as_str().expect("path"))
        .collect();
    assert_eq!(order.len(), 8);
    // Every path after its references.
    let position = |p: &str| order.iter().position(|o| *o == p).expect("copied");
    assert!(position(&inputs[0]) < position(&inputs[1]));
    assert!(position(&inputs[1]) < position(&inputs[2]));
    assert_eq!(position(&top_path), 7);
    let verify = world.ok(&["store", "verify"]);
    assert!(
        verify.contains("8 valid paths checked, 0 problems"),
        "{verify}"
    );
}

#[test]
fn copy_resumes_a_download_that_broke_off() {
    let t = pushed_package("none");
    // A plain web server over the cache folder whose first answer for each file stops
    // after 5000 bytes of its body.
    let server = common::Server::serve_dir(&t.cache).fault(common::Fault::Truncate(5000).first(1));
    let copied = t.world.ok(&[
        "copy",
        "--from",
        &server.url(),
        "--trusted-public-key",
        &t.public,
        &t.pkg,
    ]);
    assert!(copied.starts_with("copied 2 paths"), "{copied}");
    let nar = t.nar_file(&t.dep);
    let name = nar
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains(&name) && r.ends_with("bytes=5000-")),
        "{requests:?}"
    );
    let verify = t.world.ok(&["store", "verify"]);
    assert!(
        verify.contains("2 valid paths checked, 0 problems"),
        "{verify}"
    );
}

#[test]
fn push_goes_through_serve_with_a_token() {
    let world = World::new();
    let (secret, public) = world.keygen("test-1");
    let (pkg, _) = world.package("hello");
    let cache = world.path("cache");
    std::fs::create_dir_all(&cache).expect("mkdir");
    let token = world.path("token");
    std::fs::write(&token, "0123456789abcdef-token\n").expect("write");
    let serve = Serve::start(
        &world,
        &[
            "--cache",
            &format!("file://{}", cache.display()),
            "--push-token-file",
            s(&token),
        ],
    );
    // Without the token: refused, and the cache stays empty.
    let (code, stderr) = world.fails(&[
        "push",
        "--to",
        &serve.url,
        "--secret-key-file",
        s(&secret),
        &pkg,
    ]);
    common::assert_refused(code, &stderr, "401");
    assert!(!cache.join(format!("{}.narinfo", hash_part(&pkg))).exists());
    let pushed = world.ok(&[
        "push",
        "--to",
        &serve.url,
        "--token-file",
        s(&token),
        "--secret-key-file",
        s(&secret),
        &pkg,
    ]);
    assert!(pushed.starts_with("pushed 2 paths"), "{pushed}");
    let again = world.ok(&[
        "push",
        "--to",
        &serve.url,
        "--token-file",
        s(&token),
        "--secret-key-file",
        s(&secret),
        &pkg,
    ]);
    assert!(again.contains("2 already there"), "{again}");
    std::fs::rename(world.ours(), world.path("original")).expect("move");
    let copied = world.ok(&[
        "copy",
        "--from",
        &serve.url,
        "--trusted-public-key",
        &public,
        &pkg,
    ]);
    assert!(copied.starts_with("copied 2 paths"), "{copied}");
}

#[test]
fn cache_gc_removes_only_old_nars_no_narinfo_names() {
    let t = pushed_package("zstd");
    let nar = t.cache.join("nar");
    let old = nar.join("orphan.nar.zst");
    std::fs::write(&old, b"left by a killed push").expect("write");
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .and_then(|f| f.set_modified(two_hours_ago))
        .expect("age it");
    let young = nar.join("young.nar.zst");
    std::fs::write(&young, b"a push in progress").expect("write");
    let outside = t.world.path("outside");
    std::fs::write(&outside, b"not the cache's").expect("write");
    std::os::unix::fs::symlink(&outside, nar.join("link.nar.zst")).expect("link");
    let url = t.file_url();
    let gc = |extra: &[&str]| {
        let args = [&["cache", "gc", "--cache", url.as_str()][..], extra].concat();
        World::cudapkgs(&args, &[])
    };
    let (code, stdout, stderr) = gc(&["--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("would remove 1 NAR file"), "{stdout}");
    assert!(old.exists());
    let (code, stdout, stderr) = gc(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("removed 1 NAR file") && stdout.contains("1 younger kept, 2 named"),
        "{stdout}"
    );
    assert!(!old.exists() && young.exists());
    assert!(nar.join("link.nar.zst").symlink_metadata().is_ok() && outside.exists());
    // The same as one document: nothing left to remove.
    let (code, stdout, stderr) = World::cudapkgs(
        &[
            "--json",
            "cache",
            "gc",
            "--dry-run",
            "--cache",
            url.as_str(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    common::schema::assert_fits("cache-gc", &stdout);
    let collected: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(collected["removed"], serde_json::json!([]), "{collected}");
    assert_eq!(
        collected["kept_young"].as_array().map(Vec::len),
        Some(1),
        "{collected}"
    );
    // The cache still serves its paths.
    let copied = t.world.ok(&[
        "copy",
        "--from",
        &url,
        "--trusted-public-key",
        &t.public,
        &t.pkg,
    ]);
    assert!(copied.starts_with("copied 2 paths"), "{copied}");
    // A narinfo it cannot read stops it before anything goes.
    std::fs::write(&old, b"again").expect("write");
    std::fs::File::options()
        .write(true)
        .open(&old)
        .and_then(|f| f.set_modified(two_hours_ago))
        .expect("age it");
    std::fs::write(
        t.cache.join(format!("{}.narinfo", "1".repeat(32))),
        "garbage\n",
    )
    .expect("write");
    let (code, _, stderr) = gc(&[]);
    common::assert_refused(code, &stderr, "nothing was removed");
    assert!(old.exists());
}

#[test]
fn copy_says_when_a_cache_cannot_be_reached() {
    let world = World::new();
    // A port nobody listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let (code, stderr) = world.fails(&[
        "copy",
        "--from",
        &format!("http://127.0.0.1:{port}"),
        "--trusted-public-key",
        "k:lt0M+wvFcLypgp4pfYQyyaXoXIQh4UzYydo5/+j3Z3s=",
        "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-x",
    ]);
    common::assert_refused(code, &stderr, "cannot reach the cache");
    assert!(
        stderr.contains("hint: check that the cache is running"),
        "{stderr}"
    );
}
