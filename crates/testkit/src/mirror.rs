//! A mirror in NVIDIA's redistributable layout built from real PyPI wheels (what
//! `scripts/redist-mirror.py` builds, for the tests, without Python).
//!
//! Each wheel's `nvidia/<component>/{lib,include,bin}` is repacked as NVIDIA packs its
//! archives: `<pkg>-linux-x86_64-<version>-archive/` holding `lib/` (the library under
//! its full version, with the `.so.<major>` and `.so` links), `include/`, `bin/`,
//! `pkg-config/` (for cudart, in NVIDIA's form) and `LICENSE`, compressed with xz. A
//! manifest `cuda/redist/redistrib_13.0.2.json` lists them with their sha256, md5 and
//! size. Building is skipped when the folder already holds a mirror of the same wheels;
//! concurrent test processes wait on a lock for the one that builds.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::Digest;

/// The release label of the manifest.
pub const LABEL: &str = "13.0.2";

/// Wheel name prefix, redist package, long name, pkg-config name.
const PACKAGES: [(&str, &str, &str, &str); 3] = [
    (
        "nvidia_cuda_runtime",
        "cuda_cudart",
        "CUDA Runtime (cudart)",
        "cudart-13.0",
    ),
    (
        "nvidia_cuda_nvrtc",
        "cuda_nvrtc",
        "CUDA NVRTC",
        "nvrtc-13.0",
    ),
    ("nvidia_cublas", "libcublas", "CUDA cuBLAS", "cublas-13.0"),
];

/// The folder of NVIDIA's wheels that `scripts/install-nvidia-tools.sh` downloads.
pub fn wheels() -> PathBuf {
    crate::repo().join(".tools/nvidia/wheels")
}

/// The wheel of [`wheels`] whose file name starts with `prefix`
/// (`nvidia_cuda_runtime-13.`); `None` without the wheels outside CI (as
/// [`crate::require_file`] says). A folder without such a wheel is a broken setup.
pub fn wheel(prefix: &str) -> Option<PathBuf> {
    let folder = crate::require_file(&wheels(), "run scripts/install-nvidia-tools.sh")?;
    let found = std::fs::read_dir(&folder)
        .expect("the wheels folder")
        .map(|entry| entry.expect("an entry").path())
        .find(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with(prefix))
        });
    Some(found.unwrap_or_else(|| panic!("no {prefix} wheel in {}", folder.display())))
}

/// The shared mirror of cudart and NVRTC under `target/redist-mirror` (built once), or
/// `None` without the wheels outside CI (as [`crate::require`] says).
pub fn mirror() -> Option<PathBuf> {
    shared("target/redist-mirror", false)
}

/// The same with cuBLAS too (600 MB more, in a folder of its own).
pub fn mirror_with_cublas() -> Option<PathBuf> {
    shared("target/redist-mirror-cublas", true)
}

fn shared(folder: &str, with_cublas: bool) -> Option<PathBuf> {
    let wheels = crate::require_file(&wheels(), "run scripts/install-nvidia-tools.sh")?;
    let out = crate::repo().join(folder);
    build(&wheels, &out, with_cublas).unwrap_or_else(|e| panic!("the mirror {folder}: {e}"));
    Some(out)
}

#[allow(
    clippy::case_sensitive_file_extension_comparisons,
    reason = "wheels are named `.whl`, as the script matches them"
)]
fn wheel_for(wheels: &Path, prefix: &str) -> std::io::Result<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir(wheels)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .find(|name| name.starts_with(&format!("{prefix}-")) && name.ends_with(".whl"))
        .map(|name| wheels.join(name))
        .ok_or_else(|| std::io::Error::other(format!("no {prefix} wheel in {}", wheels.display())))
}

/// Builds the mirror at `out` from the wheels in `wheels` unless it is there already.
pub fn build(wheels: &Path, out: &Path, with_cublas: bool) -> std::io::Result<()> {
    let packages: Vec<_> = PACKAGES
        .iter()
        .filter(|(prefix, ..)| with_cublas || *prefix != "nvidia_cublas")
        .map(|p| wheel_for(wheels, p.0).map(|wheel| (p, wheel)))
        .collect::<Result<_, _>>()?;
    let mut stamp_text = String::from("testkit mirror, xz preset 1\n");
    for ((prefix, ..), wheel) in &packages {
        let name = wheel.file_name().unwrap_or_default().to_string_lossy();
        let _ = writeln!(stamp_text, "{prefix} {name}");
    }
    let folder = out.join("cuda/redist");
    std::fs::create_dir_all(&folder)?;
    let lock = std::fs::File::create(out.join(".lock"))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
    let stamp = out.join(".built");
    if std::fs::read_to_string(&stamp).is_ok_and(|text| text == stamp_text) {
        return Ok(());
    }
    let mut manifest = format!(
        "{{\n    \"release_date\": \"2025-10-09\",\n    \"release_label\": \"{LABEL}\",\n    \"release_product\": \"cuda\""
    );
    for ((_, package, long_name, pc_name), wheel) in &packages {
        let base = wheel.file_name().unwrap_or_default().to_string_lossy();
        let version = base.split('-').nth(1).unwrap_or_default().to_owned();
        let relative =
            format!("{package}/linux-x86_64/{package}-linux-x86_64-{version}-archive.tar.xz");
        let path = folder.join(&relative);
        std::fs::create_dir_all(path.parent().expect("a parent"))?;
        let partial = path.with_extension("xz.tmp");
        repack(wheel, package, pc_name, &version, &partial)?;
        std::fs::rename(&partial, &path)?;
        let bytes = std::fs::read(&path)?;
        let sha256 = hex(&sha2::Sha256::digest(&bytes));
        let md5 = hex(&md5(&bytes));
        let _ = write!(
            manifest,
            ",\n    \"{package}\": {{\n        \"name\": \"{long_name}\",\n        \"license\": \"CUDA Toolkit\",\n        \"license_path\": \"{package}/LICENSE.txt\",\n        \"version\": \"{version}\",\n        \"linux-x86_64\": {{\n            \"relative_path\": \"{relative}\",\n            \"sha256\": \"{sha256}\",\n            \"md5\": \"{md5}\",\n            \"size\": \"{}\"\n        }}\n    }}",
            bytes.len()
        );
    }
    manifest.push_str("\n}");
    std::fs::write(folder.join(format!("redistrib_{LABEL}.json")), manifest)?;
    std::fs::write(stamp, stamp_text)?;
    Ok(())
}

/// The tar header of one entry as NVIDIA's archives (and the script) make them.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(1_700_000_000);
    header.set_uid(0);
    header.set_gid(0);
    let _ = header.set_username("root");
    let _ = header.set_groupname("root");
    header
}

struct Archive<W: Write>(tar::Builder<W>);

impl<W: Write> Archive<W> {
    fn folder(&mut self, name: &str) -> std::io::Result<()> {
        let mut header = header(tar::EntryType::Directory, 0o755, 0);
        self.0
            .append_data(&mut header, format!("{name}/"), std::io::empty())
    }

    fn file(&mut self, name: &str, data: &[u8], mode: u32) -> std::io::Result<()> {
        let mut header = header(tar::EntryType::Regular, mode, data.len() as u64);
        self.0.append_data(&mut header, name, data)
    }

    fn link(&mut self, name: &str, target: &str) -> std::io::Result<()> {
        let mut header = header(tar::EntryType::Symlink, 0o644, 0);
        self.0.append_link(&mut header, name, target)
    }
}

fn pkg_config(name: &str) -> String {
    let library = name.split('-').next().unwrap_or_default();
    format!(
        "cudaroot=/usr/local/cuda-13.0\n\
         libdir=${{cudaroot}}/targets/x86_64-linux/lib\n\
         includedir=${{cudaroot}}/targets/x86_64-linux/include\n\n\
         Name: {library}\nDescription: CUDA {library}\nVersion: 13.0\n\
         Libs: -L${{libdir}} -l{library}\nCflags: -I${{includedir}}\n"
    )
}

/// `(lib.+)\.so\.([0-9.]+)`, the whole name: the part before `.so.`.
fn shared_library_stem(base: &str) -> Option<&str> {
    let at = base.rfind(".so.")?;
    let (stem, version) = (&base[..at], &base[at + 4..]);
    (stem.len() > 3
        && stem.starts_with("lib")
        && !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    .then_some(stem)
}

fn repack(
    wheel: &Path,
    package: &str,
    pc_name: &str,
    version: &str,
    out: &Path,
) -> std::io::Result<()> {
    let top = format!("{package}-linux-x86_64-{version}-archive");
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(wheel)?).map_err(std::io::Error::other)?;
    let xz = liblzma::write::XzEncoder::new(std::fs::File::create(out)?, 1);
    let mut tar = Archive(tar::Builder::new(xz));
    tar.folder(&top)?;
    let mut names: Vec<String> = zip
        .file_names()
        .filter(|n| n.starts_with("nvidia/") && !n.ends_with('/'))
        .map(str::to_owned)
        .collect();
    names.sort();
    let mut folders_made = HashSet::new();
    for name in &names {
        let parts: Vec<&str> = name.split('/').collect();
        if parts.len() < 3 {
            continue;
        }
        let (kind, rest) = (parts[2], parts[3..].join("/"));
        if !matches!(kind, "lib" | "include" | "bin") || rest.contains(".alt.") {
            continue;
        }
        let steps: Vec<&str> = rest.split('/').collect();
        let mut folders = vec![kind.to_owned()];
        for i in 1..steps.len() {
            folders.push(format!("{kind}/{}", steps[..i].join("/")));
        }
        for folder in folders {
            if folders_made.insert(folder.clone()) {
                tar.folder(&format!("{top}/{folder}"))?;
            }
        }
        let mut data = Vec::new();
        zip.by_name(name)
            .map_err(std::io::Error::other)?
            .read_to_end(&mut data)?;
        let mode = if kind == "bin" { 0o755 } else { 0o644 };
        let base = steps.last().copied().unwrap_or_default();
        match shared_library_stem(base).filter(|_| kind == "lib") {
            Some(stem) => {
                // NVIDIA's form: libcudart.so.13.0.96, libcudart.so.13 -> it, libcudart.so -> .so.13
                let full = format!("{stem}.so.{version}");
                tar.file(&format!("{top}/lib/{full}"), &data, mode)?;
                if full != base {
                    tar.link(&format!("{top}/lib/{base}"), &full)?;
                }
                tar.link(&format!("{top}/lib/{stem}.so"), base)?;
            }
            None => tar.file(&format!("{top}/{kind}/{rest}"), &data, mode)?,
        }
    }
    if package == "cuda_cudart" {
        tar.folder(&format!("{top}/pkg-config"))?;
        tar.file(
            &format!("{top}/pkg-config/{pc_name}.pc"),
            pkg_config(pc_name).as_bytes(),
            0o644,
        )?;
    }
    let license = zip
        .file_names()
        .find(|n| n.ends_with("License.txt"))
        .map(str::to_owned)
        .ok_or_else(|| std::io::Error::other(format!("no License.txt in {}", wheel.display())))?;
    let mut data = Vec::new();
    zip.by_name(&license)
        .map_err(std::io::Error::other)?
        .read_to_end(&mut data)?;
    tar.file(&format!("{top}/LICENSE"), &data, 0o644)?;
    tar.0.into_inner()?.finish()?.sync_all()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, b| {
        let _ = write!(text, "{b:02x}");
        text
    })
}

/// MD5 (RFC 1321), for the manifest's `md5` field as NVIDIA's manifests carry it.
#[allow(clippy::many_single_char_names, reason = "the RFC's names")]
fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let value = (f64::from(i + 1).sin().abs() * 4_294_967_296.0) as u32;
            value
        })
        .collect();
    let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    for block in message.chunks_exact(64) {
        let words: Vec<u32> = block
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(k[i])
                .wrapping_add(words[g])
                .rotate_left(S[i]);
            (a, d, c) = (d, c, b);
            b = b.wrapping_add(rotated);
        }
        for (word, add) in state.iter_mut().zip([a, b, c, d]) {
            *word = word.wrapping_add(add);
        }
    }
    let mut digest = [0u8; 16];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_le_bytes());
    }
    digest
}

#[cfg(test)]
mod tests {
    #[test]
    fn md5_of_the_rfc_examples() {
        assert_eq!(
            super::hex(&super::md5(b"")),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            super::hex(&super::md5(b"The quick brown fox jumps over the lazy dog")),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        assert_eq!(
            super::shared_library_stem("libcudart.so.13"),
            Some("libcudart")
        );
        assert_eq!(super::shared_library_stem("libcudart.so"), None);
        assert_eq!(super::shared_library_stem("lib.so.1"), None);
    }
}
