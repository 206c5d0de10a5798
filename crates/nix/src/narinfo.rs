//! `.narinfo` files: what a binary cache says about one store path, as Nix 2.8 reads
//! and writes them (`Key: value` lines, each ending with a newline).

use std::fmt::Write as _;

use crate::Error;
use crate::store_path::{self, HASH_LEN};

/// How a cache stored a NAR, named as in the `Compression:` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Xz,
    Zstd,
    Bzip2,
    Gzip,
    Brotli,
    Lz4,
}

impl Compression {
    /// Every compression Nix 2.8 names.
    pub const ALL: [Compression; 7] = [
        Compression::None,
        Compression::Xz,
        Compression::Zstd,
        Compression::Bzip2,
        Compression::Gzip,
        Compression::Brotli,
        Compression::Lz4,
    ];

    /// The `Compression:` value.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Gzip => "gzip",
            Compression::Brotli => "br",
            Compression::Lz4 => "lz4",
        }
    }

    /// The file name ending Nix gives NARs of this compression.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => ".nar",
            Compression::Xz => ".nar.xz",
            Compression::Zstd => ".nar.zst",
            Compression::Bzip2 => ".nar.bz2",
            Compression::Gzip => ".nar.gz",
            Compression::Brotli => ".nar.br",
            Compression::Lz4 => ".nar.lz4",
        }
    }

    pub fn from_name(name: &str) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A parsed narinfo. Paths are full store paths; references and the deriver are base
/// names, as in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NarInfo {
    pub store_path: String,
    /// Where the NAR is, relative to the cache (`nar/<file hash>.nar.zst`).
    pub url: String,
    pub compression: Compression,
    /// `sha256:<base-32>` of the file at `url`.
    pub file_hash: Option<String>,
    pub file_size: Option<u64>,
    /// `sha256:<base-32>` of the uncompressed NAR.
    pub nar_hash: String,
    pub nar_size: u64,
    /// Base names, sorted.
    pub references: Vec<String>,
    pub deriver: Option<String>,
    /// `name:base64` signatures.
    pub sigs: Vec<String>,
    /// The content address (`fixed:r:sha256:…`), if the path has one.
    pub ca: Option<String>,
    /// Fields this crate does not interpret (`System`, …), kept for rendering.
    pub other: Vec<(String, String)>,
}

/// `sha256:` followed by 52 characters of Nix base-32: the only hash form whose
/// fingerprint can be checked without converting.
pub fn check_sha256_field(value: &str) -> Result<(), String> {
    match value.strip_prefix("sha256:") {
        Some(digits) if digits.len() == 52 && store_path::is_nix32(digits) => Ok(()),
        _ => Err(format!(
            "{value:?} is not a SHA-256 hash written sha256:<52 characters of Nix base-32>"
        )),
    }
}

/// Checks that a NAR's `URL:` (or any key of a cache) is a relative path of plain
/// components, so that following it never leaves the cache: no empty part, no leading
/// `/`, no part starting with `.` (so neither `.` nor `..`, nor hidden names).
pub fn check_url(url: &str) -> Result<(), String> {
    let plain = !url.is_empty()
        && url.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-._=".contains(c))
        });
    if plain {
        Ok(())
    } else {
        Err(format!(
            "URL {url:?} is not a relative path of plain names inside the cache"
        ))
    }
}

impl NarInfo {
    /// Parses a narinfo for a cache whose store folder is `store_dir`. Everything Nix
    /// 2.8 requires is required (`StorePath`, `NarHash`, a non-empty `URL`, a non-zero
    /// `NarSize`); a missing `Compression` means bzip2, as for Nix. Stricter than Nix:
    /// a repeated single-valued field, an unknown compression, a hash not in base-32,
    /// a `URL` that is absolute or has `..`, and references that are not store names
    /// are refused.
    pub fn parse(text: &str, store_dir: &str) -> Result<NarInfo, Error> {
        let mut fields = Fields::default();
        let mut rest = text;
        let mut line = 0;
        while !rest.is_empty() {
            line += 1;
            let Some((content, after)) = rest.split_once('\n') else {
                return Err(malformed(line, "the last line does not end with a newline"));
            };
            rest = after;
            let Some((key, value)) = content.split_once(": ") else {
                return Err(malformed(
                    line,
                    format!("{content:?} is not a `Key: value` line"),
                ));
            };
            fields
                .set(key, value, store_dir)
                .map_err(|problem| malformed(line, problem))?;
        }
        fields.finish()
    }

    /// The text of the narinfo, fields in the order Nix writes them.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let base = |path: &str| path.rsplit('/').next().unwrap_or(path).to_owned();
        let _ = writeln!(text, "StorePath: {}", self.store_path);
        let _ = writeln!(text, "URL: {}", self.url);
        let _ = writeln!(text, "Compression: {}", self.compression.name());
        if let Some(hash) = &self.file_hash {
            let _ = writeln!(text, "FileHash: {hash}");
        }
        if let Some(size) = self.file_size {
            let _ = writeln!(text, "FileSize: {size}");
        }
        let _ = writeln!(text, "NarHash: {}", self.nar_hash);
        let _ = writeln!(text, "NarSize: {}", self.nar_size);
        let references: Vec<String> = self.references.iter().map(|r| base(r)).collect();
        let _ = writeln!(text, "References: {}", references.join(" "));
        if let Some(deriver) = &self.deriver {
            let _ = writeln!(text, "Deriver: {deriver}");
        }
        for (key, value) in &self.other {
            let _ = writeln!(text, "{key}: {value}");
        }
        for sig in &self.sigs {
            let _ = writeln!(text, "Sig: {sig}");
        }
        if let Some(ca) = &self.ca {
            let _ = writeln!(text, "CA: {ca}");
        }
        text
    }

    /// The string a signature covers:
    /// `1;<path>;<NarHash>;<NarSize>;<references as full paths, sorted, comma-joined>`.
    pub fn fingerprint(&self, store_dir: &str) -> String {
        let mut references: Vec<String> = self
            .references
            .iter()
            .map(|base| format!("{store_dir}/{base}"))
            .collect();
        references.sort();
        format!(
            "1;{};{};{};{}",
            self.store_path,
            self.nar_hash,
            self.nar_size,
            references.join(",")
        )
    }

    /// The hash part of the path: the narinfo's name in a cache (`<hash>.narinfo`).
    pub fn hash_part(&self) -> &str {
        store_path::hash_part_of(&self.store_path)
    }
}

/// What `parse` has seen so far.
#[derive(Default)]
struct Fields {
    store_path: Option<String>,
    url: Option<String>,
    compression: Option<Compression>,
    file_hash: Option<String>,
    file_size: Option<u64>,
    nar_hash: Option<String>,
    nar_size: Option<u64>,
    references: Option<Vec<String>>,
    deriver: Option<String>,
    sigs: Vec<String>,
    ca: Option<String>,
    other: Vec<(String, String)>,
}

/// Sets a field once; a second value is refused (Nix would silently take either).
fn once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("{key} appears twice"));
    }
    *slot = Some(value);
    Ok(())
}

fn number(key: &str, value: &str) -> Result<u64, String> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{key} {value:?} is not a number"));
    }
    value
        .parse()
        .map_err(|_| format!("{key} {value:?} is out of range"))
}

impl Fields {
    fn set(&mut self, key: &str, value: &str, store_dir: &str) -> Result<(), String> {
        match key {
            "StorePath" => {
                store_path::base_name(store_dir, value)?;
                once(&mut self.store_path, key, value.to_owned())
            }
            "URL" => {
                check_url(value)?;
                once(&mut self.url, key, value.to_owned())
            }
            "Compression" => {
                let compression = Compression::from_name(value).ok_or_else(|| {
                    format!("unknown compression {value:?} (Nix names none, xz, zstd, bzip2, gzip, br, lz4)")
                })?;
                once(&mut self.compression, key, compression)
            }
            "FileHash" => {
                check_sha256_field(value)?;
                once(&mut self.file_hash, key, value.to_owned())
            }
            "FileSize" => once(&mut self.file_size, key, number(key, value)?),
            "NarHash" => {
                check_sha256_field(value)?;
                once(&mut self.nar_hash, key, value.to_owned())
            }
            "NarSize" => once(&mut self.nar_size, key, number(key, value)?),
            "References" => {
                let mut references = Vec::new();
                for reference in value.split(' ').filter(|r| !r.is_empty()) {
                    store_path::check_base_name(reference)?;
                    references.push(reference.to_owned());
                }
                references.sort();
                references.dedup();
                once(&mut self.references, key, references)
            }
            "Deriver" => {
                // Nix writes this placeholder when it does not know the deriver.
                if value == "unknown-deriver" {
                    return Ok(());
                }
                store_path::check_base_name(value)?;
                once(&mut self.deriver, key, value.to_owned())
            }
            "Sig" => {
                if !value.contains(':') {
                    return Err(format!("signature {value:?} is not name:base64"));
                }
                self.sigs.push(value.to_owned());
                Ok(())
            }
            "CA" => once(&mut self.ca, key, value.to_owned()),
            _ => {
                if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(format!("{key:?} is not a field name"));
                }
                self.other.push((key.to_owned(), value.to_owned()));
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<NarInfo, Error> {
        let missing = |field: &str| Error::Invalid(format!("the narinfo has no {field}"));
        let store_path = self.store_path.ok_or_else(|| missing("StorePath"))?;
        let nar_size = self.nar_size.ok_or_else(|| missing("NarSize"))?;
        if nar_size == 0 {
            return Err(Error::Invalid("the narinfo's NarSize is 0".to_owned()));
        }
        debug_assert!(store_path.len() > HASH_LEN);
        Ok(NarInfo {
            url: self.url.ok_or_else(|| missing("URL"))?,
            compression: self.compression.unwrap_or(Compression::Bzip2),
            file_hash: self.file_hash,
            file_size: self.file_size,
            nar_hash: self.nar_hash.ok_or_else(|| missing("NarHash"))?,
            nar_size,
            references: self.references.unwrap_or_default(),
            deriver: self.deriver,
            sigs: self.sigs,
            ca: self.ca,
            other: self.other,
            store_path,
        })
    }
}

fn malformed(line: usize, problem: impl Into<String>) -> Error {
    Error::Malformed {
        line,
        problem: problem.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A narinfo in the shape `nix copy --to file://…?compression=zstd` writes (Nix 2.8).
    const FROM_NIX: &str = "StorePath: /nix/store/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello\n\
URL: nar/1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3.nar.zst\n\
Compression: zstd\n\
FileHash: sha256:1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3\n\
FileSize: 120\n\
NarHash: sha256:0mgbf1m2s6qz7c2xs0xrjaqm7b0ls0gkhfg8ymv0j23qiwf3jpqq\n\
NarSize: 128\n\
References: 7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello 0123456789abcdfghijklmnpqrsvwxyz-dep\n\
Deriver: 0123456789abcdfghijklmnpqrsvwxyz-hello.drv\n\
Sig: test-1:AAAA\n\
CA: fixed:r:sha256:0mgbf1m2s6qz7c2xs0xrjaqm7b0ls0gkhfg8ymv0j23qiwf3jpqq\n";

    #[test]
    fn parses_and_renders_nix_narinfo() {
        let info = NarInfo::parse(FROM_NIX, "/nix/store").expect("parses");
        assert_eq!(info.compression, Compression::Zstd);
        assert_eq!(info.nar_size, 128);
        assert_eq!(info.file_size, Some(120));
        assert_eq!(
            info.references,
            [
                "0123456789abcdfghijklmnpqrsvwxyz-dep",
                "7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello"
            ]
        );
        assert_eq!(info.hash_part(), "7h7qgvs4kgzsn8a6rb273saxyqh4jxlz");
        let again = NarInfo::parse(&info.render(), "/nix/store").expect("reparses");
        assert_eq!(again, info);
        assert_eq!(
            info.fingerprint("/nix/store"),
            "1;/nix/store/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello;\
sha256:0mgbf1m2s6qz7c2xs0xrjaqm7b0ls0gkhfg8ymv0j23qiwf3jpqq;128;\
/nix/store/0123456789abcdfghijklmnpqrsvwxyz-dep,/nix/store/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello"
        );
    }

    #[test]
    fn missing_compression_means_bzip2_and_unknown_fields_are_kept() {
        let text = "StorePath: /nix/store/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello\n\
URL: nar/x.nar.bz2\nNarHash: sha256:0mgbf1m2s6qz7c2xs0xrjaqm7b0ls0gkhfg8ymv0j23qiwf3jpqq\n\
NarSize: 8\nSystem: x86_64-linux\n";
        let info = NarInfo::parse(text, "/nix/store").expect("parses");
        assert_eq!(info.compression, Compression::Bzip2);
        assert_eq!(
            info.other,
            [("System".to_owned(), "x86_64-linux".to_owned())]
        );
        assert!(info.render().contains("System: x86_64-linux\n"));
    }

    #[test]
    fn refuses_what_nix_refuses_and_more() {
        let good: Vec<&str> = FROM_NIX.lines().collect();
        let with = |index: usize, line: Option<&str>| {
            let mut lines = good.clone();
            match line {
                Some(line) => lines[index] = line,
                None => {
                    lines.remove(index);
                }
            }
            lines.iter().flat_map(|l| [*l, "\n"]).collect::<String>()
        };
        let cases = [
            (with(0, None), "no StorePath"),
            (with(1, None), "no URL"),
            (with(5, None), "no NarHash"),
            (with(6, Some("NarSize: 0")), "NarSize is 0"),
            (with(6, Some("NarSize: -1")), "not a number"),
            (
                with(6, Some("NarSize: 99999999999999999999999")),
                "out of range",
            ),
            (with(1, Some("URL: ../../etc/passwd")), "relative path"),
            (with(1, Some("URL: /etc/passwd")), "relative path"),
            (with(1, Some("URL: nar/./x")), "relative path"),
            (with(1, Some("URL: nar/.hidden")), "relative path"),
            (with(1, Some("URL: nar//x")), "relative path"),
            (with(1, Some("URL: https://elsewhere/x")), "relative path"),
            (with(2, Some("Compression: lzip")), "unknown compression"),
            (with(5, Some("NarHash: sha256:abc")), "not a SHA-256"),
            (
                with(
                    5,
                    Some("NarHash: md5:0mgbf1m2s6qz7c2xs0xrjaqm7b0ls0gkhfg8ymv0j23qiwf3jpqq"),
                ),
                "not a SHA-256",
            ),
            (
                with(
                    0,
                    Some("StorePath: /other/store/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello"),
                ),
                "not in the store folder",
            ),
            (with(7, Some("References: ../x")), "too short"),
            (with(9, Some("Sig: nocolon")), "name:base64"),
            (
                with(3, Some("FileHash sha256:x")),
                "not a `Key: value` line",
            ),
            (format!("{FROM_NIX}NarSize: 5\n"), "appears twice"),
            (
                FROM_NIX.trim_end().to_owned(),
                "does not end with a newline",
            ),
        ];
        for (text, expected) in cases {
            let error = NarInfo::parse(&text, "/nix/store").expect_err(expected);
            assert!(
                error.to_string().contains(expected),
                "{error} for {expected}"
            );
        }
    }

    #[test]
    fn errors_name_the_line() {
        let text = "StorePath: /nix/store/7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-hello\nbad\n";
        let error = NarInfo::parse(text, "/nix/store").expect_err("malformed");
        assert!(matches!(error, Error::Malformed { line: 2, .. }), "{error}");
    }
}
