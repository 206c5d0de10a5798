//! Files to look at: folders walked, wheels opened, files mapped into memory, and the
//! work spread over the machine's cores; and files changed atomically (`rewrite`).
//! Byte sizes for people (`units`) live here as the lowest crate that shows files.
//!
//! Files are found first (cheap), then handed to worker threads; each file's bytes are
//! mapped, never read whole into memory. Wheel and zip members that hold binaries are
//! copied to a temporary file and mapped like any other file; a member must hold exactly
//! the size the zip declares, within bounds on size and compression ratio.

pub mod dir;
pub mod links;
mod rewrite;
pub mod scratch;
pub mod units;
pub mod zip_archive;

pub use rewrite::{Rewrite, copy_tree, rewrite_file, write_file_atomically};

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use dir::{Dir, Kind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A file to look at, and how it was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The path as shown to people: `dir/lib.so`, or `pkg.whl:nvidia/lib/lib.so`.
    pub display: String,
    /// Named by the user rather than found inside a folder or wheel.
    pub named: bool,
    /// Size in bytes.
    pub size: u64,
}

/// What became of one file.
#[derive(Debug)]
pub struct Visited<T> {
    pub source: Source,
    pub outcome: Outcome<T>,
}

#[derive(Debug)]
pub enum Outcome<T> {
    /// The work ran on the file's bytes.
    Done(T),
    /// A named zip that holds no binaries.
    NoBinaries,
    /// The file could not be read, or the work failed on it.
    Failed(String),
}

impl<T> From<Result<T, String>> for Outcome<T> {
    fn from(result: Result<T, String>) -> Self {
        match result {
            Ok(value) => Outcome::Done(value),
            Err(message) => Outcome::Failed(message),
        }
    }
}

/// A file's bytes, mapped when the file is not empty.
#[derive(Debug)]
pub enum Mapped {
    Map(memmap2::Mmap),
    Empty,
}

impl Mapped {
    pub fn open(file: &File) -> io::Result<Mapped> {
        if file.metadata()?.len() == 0 {
            return Ok(Mapped::Empty);
        }
        // SAFETY: the mapping is read-only and private to this process. Another process
        // truncating the file while it is mapped would make reads fault; that is the
        // accepted cost of not copying gigabytes of libraries into memory.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(Mapped::Map(map))
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Mapped::Map(map) => map,
            Mapped::Empty => &[],
        }
    }
}

/// A file's bytes, mapped, and the open file, for positional reads that should not
/// fault in the mapping.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub bytes: &'a [u8],
    pub file: &'a File,
}

/// How many leading bytes `Walk::wants` is shown.
pub const MAGIC_LEN: usize = 0x14;

/// Which files a walk hands to the work.
#[derive(Debug, Clone, Copy)]
pub struct Walk {
    /// Files found in folders are visited when this accepts their first bytes (named
    /// files always are).
    pub wants: fn(&[u8]) -> bool,
    /// Open zip files (wheels) found or named, and visit their members that `wants`
    /// accepts.
    pub zips: bool,
}

/// The folder `path` is in: its parent, or `.` for a bare name (whose parent is the
/// empty path, which names no folder).
pub fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// A zip local file header: wheels and zip files.
pub fn is_zip(magic: &[u8]) -> bool {
    magic.starts_with(b"PK\x03\x04")
}

/// Where a job's file is: named by the user, or found below a named folder.
#[derive(Debug)]
enum Place {
    /// Opened by its name (a link the user named is followed).
    Named(PathBuf),
    /// `relative` below `roots[root]`, opened component by component without following
    /// a link.
    Found { root: usize, relative: PathBuf },
}

/// One unit of work: a file on disk, or a whole zip whose members are visited in turn.
#[derive(Debug)]
struct Job {
    place: Place,
    display: String,
    named: bool,
    zip: bool,
}

/// What the walk found: the folders named, the jobs, and what could not be read.
struct Found<T> {
    roots: Vec<Dir>,
    jobs: Vec<Job>,
    failures: Vec<Visited<T>>,
    seen: HashSet<(u64, u64)>,
}

/// Visits every file under `inputs` that can hold device code, calling `work` with its
/// bytes on several threads. Folders are walked through folder handles without
/// following symbolic links; hard links are visited once. A named FIFO, device or
/// socket is reported, never opened in a way that waits. Results come back in path
/// order.
pub fn visit<T, F>(inputs: &[PathBuf], walk: Walk, threads: usize, work: F) -> Vec<Visited<T>>
where
    T: Send,
    F: Fn(&Source, Input<'_>) -> Result<T, String> + Sync,
{
    let mut found = Found {
        roots: Vec::new(),
        jobs: Vec::new(),
        failures: Vec::new(),
        seen: HashSet::new(),
    };
    for input in inputs {
        collect_named(input, walk, &mut found);
    }
    let Found {
        roots,
        jobs,
        failures,
        ..
    } = found;

    if threads <= 1 || jobs.len() <= 1 {
        // No worker threads for one file: a thread's fresh malloc arena costs more
        // than the file.
        let mut results = failures;
        for job in &jobs {
            results.extend(run_job(job, &roots, walk, &work));
        }
        results.sort_by(|a, b| a.source.display.cmp(&b.source.display));
        return results;
    }
    let next = AtomicUsize::new(0);
    let results = Mutex::new(failures);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(jobs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(index) else { break };
                    let done = run_job(job, &roots, walk, &work);
                    results
                        .lock()
                        .expect("no worker panics holding the lock")
                        .extend(done);
                }
            });
        }
    });
    let mut results = results.into_inner().expect("workers finished");
    results.sort_by(|a, b| a.source.display.cmp(&b.source.display));
    results
}

/// A path the user named: a folder is walked, a file visited, anything else reported.
fn collect_named<T>(path: &Path, walk: Walk, found: &mut Found<T>) {
    let display = path.display().to_string();
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) => {
            found.failures.push(failure(display, true, 0, &error));
            return;
        }
    };
    if metadata.is_dir() {
        match Dir::open(path) {
            Ok(root) => {
                found.roots.push(root);
                collect_below(found.roots.len() - 1, Path::new(""), path, walk, found);
            }
            Err(error) => found.failures.push(failure(display, true, 0, &error)),
        }
        return;
    }
    if !metadata.is_file() {
        let message = format!(
            "{}, not a file or folder: only files and folders are read",
            special_kind(metadata.file_type())
        );
        found.failures.push(Visited {
            source: Source {
                display,
                named: true,
                size: 0,
            },
            outcome: Outcome::Failed(message),
        });
        return;
    }
    // Only the zip check needs the first bytes: a named file is visited anyway.
    let zip = walk.zips
        && match dir::open_named_file(path).and_then(|file| read_magic(&file)) {
            Ok(magic) => is_zip(&magic),
            Err(error) => {
                found
                    .failures
                    .push(failure(display, true, metadata.len(), &error));
                return;
            }
        };
    found.jobs.push(Job {
        place: Place::Named(path.to_owned()),
        display,
        named: true,
        zip,
    });
}

/// What a file that is neither a regular file nor a folder is, for messages.
fn special_kind(file_type: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "a file of unknown type"
    }
}

/// The folder at `relative` below root `root` (shown as `shown`): files are opened
/// relative to their folder's handle, links and special files are skipped.
fn collect_below<T>(root: usize, relative: &Path, shown: &Path, walk: Walk, found: &mut Found<T>) {
    let listed = found.roots[root]
        .open_dir(relative)
        .and_then(|folder| Ok((folder.entries(Path::new(""))?, folder)));
    let (entries, folder) = match listed {
        Ok(listed) => listed,
        Err(error) => {
            let display = shown.display().to_string();
            found
                .failures
                .push(failure(display, relative.as_os_str().is_empty(), 0, &error));
            return;
        }
    };
    for (name, kind) in entries {
        let child = relative.join(&name);
        let child_shown = shown.join(&name);
        match kind {
            Kind::Folder => collect_below(root, &child, &child_shown, walk, found),
            Kind::File => {
                let display = child_shown.display().to_string();
                let opened = folder.open_file(Path::new(&name)).and_then(|file| {
                    let metadata = file.metadata()?;
                    Ok((read_magic(&file)?, metadata))
                });
                let (magic, metadata) = match opened {
                    Ok(opened) => opened,
                    Err(error) => {
                        found.failures.push(failure(display, false, 0, &error));
                        continue;
                    }
                };
                if !found.seen.insert(file_identity(&metadata)) {
                    continue;
                }
                let zip = walk.zips && is_zip(&magic);
                if zip || (walk.wants)(&magic) {
                    found.jobs.push(Job {
                        place: Place::Found {
                            root,
                            relative: child,
                        },
                        display,
                        named: false,
                        zip,
                    });
                }
            }
            Kind::Symlink | Kind::Special(_) => {}
        }
    }
}

fn file_identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

fn failure<T>(display: String, named: bool, size: u64, error: &io::Error) -> Visited<T> {
    Visited {
        source: Source {
            display,
            named,
            size,
        },
        outcome: Outcome::Failed(error.to_string()),
    }
}

/// The first `MAGIC_LEN` bytes, read at offset 0 whatever the file's position.
fn read_magic(file: &File) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut magic = vec![0u8; MAGIC_LEN];
    let mut filled = 0;
    while filled < MAGIC_LEN {
        match file.read_at(&mut magic[filled..], filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    magic.truncate(filled);
    Ok(magic)
}

fn run_job<T, F>(job: &Job, roots: &[Dir], walk: Walk, work: &F) -> Vec<Visited<T>>
where
    F: Fn(&Source, Input<'_>) -> Result<T, String>,
{
    let opened = match &job.place {
        Place::Named(path) => dir::open_named_file(path),
        Place::Found { root, relative } => roots[*root].open_file(relative),
    };
    let opened = opened.and_then(|file| {
        let size = file.metadata()?.len();
        Ok((size, file))
    });
    let (size, file) = match opened {
        Ok(opened) => opened,
        Err(error) => return vec![failure(job.display.clone(), job.named, 0, &error)],
    };
    let source = Source {
        display: job.display.clone(),
        named: job.named,
        size,
    };
    if job.zip {
        return visit_zip(file, &source, walk, work);
    }
    let mapped = match Mapped::open(&file) {
        Ok(mapped) => mapped,
        Err(error) => return vec![failure(job.display.clone(), job.named, size, &error)],
    };
    let input = Input {
        bytes: mapped.bytes(),
        file: &file,
    };
    let outcome = work(&source, input).into();
    vec![Visited { source, outcome }]
}

/// Visits the members of a zip (a wheel) that hold binaries.
fn visit_zip<T, F>(file: File, zip_source: &Source, walk: Walk, work: &F) -> Vec<Visited<T>>
where
    F: Fn(&Source, Input<'_>) -> Result<T, String>,
{
    let fail = |message: String| {
        vec![Visited {
            source: zip_source.clone(),
            outcome: Outcome::Failed(message),
        }]
    };
    let mut archive = match zip_archive::open_zip(file) {
        Ok(archive) => archive,
        Err(error) => return fail(error.to_string()),
    };
    let mut results = Vec::new();
    for index in 0..archive.len() {
        let mut member = match archive.by_index(index) {
            Ok(member) => member,
            Err(error) => return fail(format!("unreadable zip member {index}: {error}")),
        };
        if !member.is_file() {
            continue;
        }
        let display = format!("{}:{}", zip_source.display, member.name());
        let size = member.size();
        let mut magic = Vec::with_capacity(MAGIC_LEN);
        if let Err(error) = member
            .by_ref()
            .take(MAGIC_LEN as u64)
            .read_to_end(&mut magic)
        {
            results.push(failure(display, false, size, &error));
            continue;
        }
        if !(walk.wants)(&magic) {
            continue;
        }
        let source = Source {
            display,
            named: false,
            size,
        };
        let result = check_member_size(size, member.compressed_size())
            .and_then(|()| copy_to_temp(&magic, &mut member, size))
            .and_then(|temp| {
                let mapped = Mapped::open(temp.as_file()).map_err(|e| e.to_string())?;
                let input = Input {
                    bytes: mapped.bytes(),
                    file: temp.as_file(),
                };
                work(&source, input)
            });
        results.push(Visited {
            source,
            outcome: result.into(),
        });
    }
    if results.is_empty() && zip_source.named {
        return vec![Visited {
            source: zip_source.clone(),
            outcome: Outcome::NoBinaries,
        }];
    }
    results
}

/// The largest zip member unpacked to a temporary file: ten times the largest CUDA
/// library known (libtorch_cuda.so, about 1.5 GiB).
pub const MAX_MEMBER_BYTES: u64 = 16 << 30;
/// The highest compression ratio accepted for members above `RATIO_FREE_BYTES`.
/// Libraries deflate by 2 to 10 times (pruned ones, with zeroed device code, somewhat
/// more); deflate reaches about 1000:1 only on runs of one byte, which is what a zip bomb
/// is made of.
pub const MAX_COMPRESSION_RATIO: u64 = 100;
/// Members up to this size are accepted whatever their ratio.
const RATIO_FREE_BYTES: u64 = 16 << 20;

/// Refuses a member whose declared size is beyond the bounds, before anything is written.
fn check_member_size(declared: u64, compressed: u64) -> Result<(), String> {
    if declared > MAX_MEMBER_BYTES {
        return Err(format!(
            "zip member declares {declared} bytes, more than the {MAX_MEMBER_BYTES} unpacked from one member; nothing of it was read"
        ));
    }
    if declared > RATIO_FREE_BYTES && declared / compressed.max(1) > MAX_COMPRESSION_RATIO {
        return Err(format!(
            "zip member expands {compressed} bytes to {declared}, more than {MAX_COMPRESSION_RATIO} times: a zip bomb or a damaged zip file; nothing of it was read"
        ));
    }
    Ok(())
}

/// Copies a member (`magic`, already read, then `rest`) to a temporary file; it must hold
/// exactly the `declared` bytes the zip's directory promises.
fn copy_to_temp(
    magic: &[u8],
    rest: &mut impl Read,
    declared: u64,
) -> Result<tempfile::NamedTempFile, String> {
    let mut temp = tempfile::NamedTempFile::new()
        .map_err(|e| format!("cannot create a temporary file: {e}"))?;
    io::Write::write_all(&mut temp, magic).map_err(|e| e.to_string())?;
    let room = declared.saturating_sub(magic.len() as u64);
    // One byte more than promised is enough to tell that the member lies.
    let copied = io::copy(&mut rest.take(room + 1), &mut temp)
        .map_err(|e| format!("cannot unpack member: {e}"))?;
    let total = magic.len() as u64 + copied;
    if total != declared {
        let holds = if total > declared { "more" } else { "fewer" };
        return Err(format!(
            "zip member holds {holds} bytes than the {declared} its zip directory declares: a damaged or hostile zip file; it was not used"
        ));
    }
    Ok(temp)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn wants_elf(magic: &[u8]) -> bool {
        magic.starts_with(b"\x7fELF")
    }

    const WALK: Walk = Walk {
        wants: wants_elf,
        zips: true,
    };

    fn names(visited: &[Visited<usize>], root: &Path) -> Vec<String> {
        visited
            .iter()
            .map(|v| {
                let shown = v.source.display.replace(&root.display().to_string(), "");
                match &v.outcome {
                    Outcome::Done(len) => format!("{shown}={len}"),
                    Outcome::NoBinaries => format!("{shown}:none"),
                    Outcome::Failed(_) => format!("{shown}:failed"),
                }
            })
            .collect()
    }

    #[test]
    fn walks_folders_once_per_file_and_opens_zips() {
        let dir = tempfile::tempdir().expect("temp");
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("sub/a.so"), b"\x7fELF-a").expect("write");
        std::fs::write(root.join("notes.txt"), b"text").expect("write");
        std::fs::write(root.join("empty"), b"").expect("write");
        std::fs::hard_link(root.join("sub/a.so"), root.join("hard.so")).expect("link");
        std::os::unix::fs::symlink(root.join("sub/a.so"), root.join("sym.so")).expect("symlink");
        let mut zip = zip::ZipWriter::new(File::create(root.join("w.whl")).expect("create"));
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("pkg/lib.so", options).expect("start");
        zip.write_all(b"\x7fELF-zipped").expect("write");
        zip.start_file("pkg/x.py", options).expect("start");
        zip.write_all(b"print()").expect("write");
        zip.finish().expect("finish");

        for threads in [1, 4] {
            let visited = visit(&[root.to_owned()], WALK, threads, |_, input| {
                Ok(input.bytes.len())
            });
            assert_eq!(
                names(&visited, root),
                ["/hard.so=6", "/w.whl:pkg/lib.so=11"],
                "{threads}"
            );
        }
        assert!(visited_named_file_even_if_unwanted(&root.join("notes.txt")));
    }

    fn visited_named_file_even_if_unwanted(path: &Path) -> bool {
        let visited = visit(&[path.to_owned()], WALK, 1, |source, input| {
            assert!(source.named);
            Ok(input.bytes.len())
        });
        matches!(visited[0].outcome, Outcome::Done(4))
    }

    #[test]
    fn missing_files_and_zips_without_binaries_are_reported() {
        let dir = tempfile::tempdir().expect("temp");
        let missing = dir.path().join("missing.so");
        let visited = visit(&[missing], WALK, 1, |_, input| Ok(input.bytes.len()));
        assert!(matches!(visited[0].outcome, Outcome::Failed(ref m) if m.contains("No such file")));

        let wheel = dir.path().join("pure.whl");
        let mut zip = zip::ZipWriter::new(File::create(&wheel).expect("create"));
        zip.start_file("pkg/x.py", zip::write::SimpleFileOptions::default())
            .expect("start");
        zip.finish().expect("finish");
        let visited = visit(&[wheel], WALK, 1, |_, input| Ok(input.bytes.len()));
        assert!(matches!(visited[0].outcome, Outcome::NoBinaries));
    }

    fn mkfifo(path: &Path) {
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            path,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .expect("mkfifo");
    }

    /// `visit` on another thread, so that a wait on a FIFO fails the test instead of
    /// hanging it.
    fn visit_in_time(inputs: Vec<PathBuf>) -> Vec<Visited<usize>> {
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let visited = visit(&inputs, WALK, 2, |_, input| Ok(input.bytes.len()));
            send.send(visited).expect("the test waits");
        });
        receive
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("visit waited on a FIFO")
    }

    #[test]
    fn named_special_files_are_reported_and_found_ones_skipped_without_waiting() {
        let dir = tempfile::tempdir().expect("temp");
        let root = dir.path();
        let fifo = root.join("pipe");
        mkfifo(&fifo);
        std::fs::create_dir(root.join("sub")).expect("mkdir");
        mkfifo(&root.join("sub/pipe.so"));
        std::fs::write(root.join("sub/a.so"), b"\x7fELF-a").expect("write");
        let visited = visit_in_time(vec![
            fifo.clone(),
            PathBuf::from("/dev/null"),
            root.join("sub"),
        ]);
        let outcomes: Vec<(String, String)> = visited
            .iter()
            .map(|v| {
                let outcome = match &v.outcome {
                    Outcome::Done(len) => len.to_string(),
                    Outcome::NoBinaries => "none".to_owned(),
                    Outcome::Failed(message) => message.clone(),
                };
                (
                    v.source.display.replace(&root.display().to_string(), ""),
                    outcome,
                )
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                (
                    "/dev/null".to_owned(),
                    "a character device, not a file or folder: only files and folders are read"
                        .to_owned()
                ),
                (
                    "/pipe".to_owned(),
                    "a FIFO, not a file or folder: only files and folders are read".to_owned()
                ),
                ("/sub/a.so".to_owned(), "6".to_owned()),
            ]
        );
    }

    /// A wheel with one deflated member, `pkg/lib.so`, holding `content`.
    fn wheel(path: &Path, content: &[u8]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(File::create(path).expect("create"));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("pkg/lib.so", options).expect("start");
        zip.write_all(content).expect("write");
        zip.finish().expect("finish");
        std::fs::read(path).expect("read")
    }

    fn member_outcome(wheel: &Path) -> String {
        let visited = visit(&[wheel.to_owned()], WALK, 1, |_, input| {
            Ok(input.bytes.len())
        });
        assert_eq!(visited.len(), 1);
        assert!(visited[0].source.display.ends_with(".whl:pkg/lib.so"));
        match &visited[0].outcome {
            Outcome::Done(len) => len.to_string(),
            Outcome::NoBinaries => "none".to_owned(),
            Outcome::Failed(message) => message.clone(),
        }
    }

    #[test]
    fn zip_members_that_lie_about_their_size_are_refused() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("liar.whl");
        let mut content = b"\x7fELF".to_vec();
        content.extend((0..4000u32).map(|i| (i % 251) as u8));
        let mut data = wheel(&path, &content);
        assert_eq!(member_outcome(&path), content.len().to_string());
        // Declare 100 bytes in the local header (offset 22) and the central directory
        // entry (offset 24); the deflate stream still holds 4004.
        let central = data
            .windows(4)
            .position(|w| w == b"PK\x01\x02")
            .expect("central directory");
        for at in [22, central + 24] {
            data[at..at + 4].copy_from_slice(&100u32.to_le_bytes());
        }
        std::fs::write(&path, &data).expect("write");
        let outcome = member_outcome(&path);
        assert!(
            outcome.contains("holds more bytes than the 100 its zip directory declares"),
            "{outcome}"
        );
        // Declaring more than it holds is as wrong.
        for at in [22, central + 24] {
            data[at..at + 4].copy_from_slice(&5000u32.to_le_bytes());
        }
        std::fs::write(&path, &data).expect("write");
        let outcome = member_outcome(&path);
        assert!(
            outcome.contains("holds fewer bytes than the 5000"),
            "{outcome}"
        );
    }

    #[test]
    fn zip_bombs_are_refused_before_anything_is_unpacked() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("bomb.whl");
        let mut content = b"\x7fELF".to_vec();
        content.resize(64 << 20, 0);
        let data = wheel(&path, &content);
        assert!(data.len() < 1 << 20, "{}", data.len());
        let outcome = member_outcome(&path);
        assert!(
            outcome.contains("expands") && outcome.contains("more than 100 times"),
            "{outcome}"
        );
        assert!(check_member_size(MAX_MEMBER_BYTES + 1, MAX_MEMBER_BYTES).is_err());
        assert!(check_member_size(MAX_MEMBER_BYTES, MAX_MEMBER_BYTES / 10).is_ok());
        // Small members are never refused for their ratio.
        assert!(check_member_size(RATIO_FREE_BYTES, 1).is_ok());
    }
}
