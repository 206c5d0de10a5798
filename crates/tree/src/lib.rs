//! Files to look at: folders walked, wheels opened, files mapped into memory, and the
//! work spread over the machine's cores; and files changed atomically (`rewrite`).
//!
//! Files are found first (cheap), then handed to worker threads; each file's bytes are
//! mapped, never read whole into memory. Wheel and zip members that hold binaries are
//! copied to a temporary file and mapped like any other file.

pub mod dir;
mod rewrite;
pub mod scratch;

pub use rewrite::{Rewrite, copy_tree, rewrite_file};

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
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

/// A zip local file header: wheels and zip files.
pub fn is_zip(magic: &[u8]) -> bool {
    magic.starts_with(b"PK\x03\x04")
}

/// One unit of work: a file on disk, or a whole zip whose members are visited in turn.
#[derive(Debug)]
struct Job {
    path: PathBuf,
    display: String,
    named: bool,
    zip: bool,
}

/// Visits every file under `inputs` that can hold device code, calling `work` with its
/// bytes on several threads. Folders are walked recursively without following
/// symbolic links; hard links are visited once. Results come back in path order.
pub fn visit<T, F>(inputs: &[PathBuf], walk: Walk, threads: usize, work: F) -> Vec<Visited<T>>
where
    T: Send,
    F: Fn(&Source, Input<'_>) -> Result<T, String> + Sync,
{
    let mut jobs = Vec::new();
    let mut failures = Vec::new();
    let mut seen = HashSet::new();
    for input in inputs {
        collect(input, true, walk, &mut seen, &mut jobs, &mut failures);
    }

    if threads <= 1 || jobs.len() <= 1 {
        // No worker threads for one file: a thread's fresh malloc arena costs more
        // than the file.
        let mut results = failures;
        for job in &jobs {
            results.extend(run_job(job, walk, &work));
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
                    let done = run_job(job, walk, &work);
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

fn collect<T>(
    path: &Path,
    named: bool,
    walk: Walk,
    seen: &mut HashSet<(u64, u64)>,
    jobs: &mut Vec<Job>,
    failures: &mut Vec<Visited<T>>,
) {
    let display = path.display().to_string();
    let metadata = if named {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    };
    let metadata = match metadata {
        Ok(metadata) => metadata,
        Err(error) => {
            failures.push(failure(display, named, 0, &error));
            return;
        }
    };
    if metadata.is_dir() {
        let mut children: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(read) => read
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .collect(),
            Err(error) => {
                failures.push(failure(display, named, 0, &error));
                return;
            }
        };
        children.sort();
        for child in children {
            collect(&child, false, walk, seen, jobs, failures);
        }
        return;
    }
    if !metadata.is_file() {
        return;
    }
    if !named && !seen.insert(file_identity(&metadata)) {
        return;
    }
    let magic = match read_magic(path) {
        Ok(magic) => magic,
        Err(error) => {
            failures.push(failure(display, named, metadata.len(), &error));
            return;
        }
    };
    let zip = walk.zips && is_zip(&magic);
    if named || zip || (walk.wants)(&magic) {
        jobs.push(Job {
            path: path.to_owned(),
            display,
            named,
            zip,
        });
    }
}

#[cfg(unix)]
fn file_identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

#[cfg(not(unix))]
fn file_identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    (metadata.len(), 0)
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

fn read_magic(path: &Path) -> io::Result<Vec<u8>> {
    let mut magic = Vec::with_capacity(MAGIC_LEN);
    File::open(path)?
        .take(MAGIC_LEN as u64)
        .read_to_end(&mut magic)?;
    Ok(magic)
}

fn run_job<T, F>(job: &Job, walk: Walk, work: &F) -> Vec<Visited<T>>
where
    F: Fn(&Source, Input<'_>) -> Result<T, String>,
{
    let opened = File::open(&job.path).and_then(|file| {
        let size = file.metadata()?.len();
        Ok((Mapped::open(&file)?, size, file))
    });
    let (mapped, size, file) = match opened {
        Ok(opened) => opened,
        Err(error) => return vec![failure(job.display.clone(), job.named, 0, &error)],
    };
    let source = Source {
        display: job.display.clone(),
        named: job.named,
        size,
    };
    if job.zip {
        return visit_zip(&job.path, &source, walk, work);
    }
    let input = Input {
        bytes: mapped.bytes(),
        file: &file,
    };
    let outcome = work(&source, input).into();
    vec![Visited { source, outcome }]
}

/// Visits the members of a zip (a wheel) that hold binaries.
fn visit_zip<T, F>(path: &Path, zip_source: &Source, walk: Walk, work: &F) -> Vec<Visited<T>>
where
    F: Fn(&Source, Input<'_>) -> Result<T, String>,
{
    let fail = |message: String| {
        vec![Visited {
            source: zip_source.clone(),
            outcome: Outcome::Failed(message),
        }]
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) => return fail(error.to_string()),
    };
    let mut archive = match zip::ZipArchive::new(file) {
        Ok(archive) => archive,
        Err(error) => return fail(format!("unreadable zip file: {error}")),
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
        let result = copy_to_temp(&magic, &mut member).and_then(|temp| {
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

fn copy_to_temp(magic: &[u8], rest: &mut impl Read) -> Result<tempfile::NamedTempFile, String> {
    let mut temp = tempfile::NamedTempFile::new()
        .map_err(|e| format!("cannot create a temporary file: {e}"))?;
    io::Write::write_all(&mut temp, magic).map_err(|e| e.to_string())?;
    io::copy(rest, &mut temp).map_err(|e| format!("cannot unpack member: {e}"))?;
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
}
