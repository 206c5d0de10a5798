//! NVIDIA's redistributable manifests (`redistrib_<version>.json`): every product's shape,
//! read into packages, systems and archives. Errors name the JSON path of the bad value.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::Error;

/// One archive of a package for one system (and CUDA variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// Relative to the manifest's folder.
    pub relative_path: String,
    /// Lower-case hex.
    pub sha256: String,
    pub md5: Option<String>,
    pub size: u64,
}

/// A package's archives for one system: one, or one per CUDA major version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemArchives {
    Single(Archive),
    /// `cuda12` → archive, as the manifests name them.
    PerCuda(BTreeMap<String, Archive>),
}

/// One package of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The manifest key (`cuda_cudart`, `libcublas`, `cudnn`).
    pub key: String,
    /// The long name (`CUDA Runtime (cudart)`).
    pub name: String,
    pub license: Option<String>,
    pub license_path: Option<String>,
    pub version: String,
    /// `["12", "13"]` when the archives are per CUDA major version.
    pub cuda_variants: Vec<String>,
    /// System name (`linux-x86_64`, `linux-sbsa`, `source`, …) → archives.
    pub systems: BTreeMap<String, SystemArchives>,
}

impl Package {
    /// The archive for `system`, choosing the variant for CUDA major `cuda_major` when the
    /// package has variants (the newest variant when `cuda_major` is `None`).
    pub fn archive(&self, system: &str, cuda_major: Option<u32>) -> Option<&Archive> {
        match self.systems.get(system)? {
            SystemArchives::Single(archive) => Some(archive),
            SystemArchives::PerCuda(variants) => match cuda_major {
                Some(major) => variants.get(&format!("cuda{major}")),
                None => variants
                    .iter()
                    .max_by_key(|(name, _)| variant_number(name))
                    .map(|(_, archive)| archive),
            },
        }
    }
}

fn variant_number(name: &str) -> u32 {
    name.trim_start_matches("cuda").parse().unwrap_or(0)
}

/// A whole manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub release_date: Option<String>,
    pub release_label: Option<String>,
    pub release_product: Option<String>,
    /// By manifest key.
    pub packages: BTreeMap<String, Package>,
}

/// Keys of a package object that are not systems.
const PACKAGE_FIELDS: &[&str] = &["name", "license", "license_path", "version", "cuda_variant"];

impl Manifest {
    /// Parses a manifest; `origin` (a file name or URL) starts every error message.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest, Error> {
        let bad = |at: &str, problem: String| Error::BadDocument {
            origin: origin.to_owned(),
            at: at.to_owned(),
            problem,
        };
        let root: Value = serde_json::from_str(text).map_err(|source| Error::NotJson {
            origin: origin.to_owned(),
            at: format!("line {} column {}", source.line(), source.column()),
            what: "JSON",
            source,
        })?;
        let Value::Object(top) = root else {
            return Err(bad("$", "expected an object of packages".to_owned()));
        };
        let mut manifest = Manifest {
            release_date: None,
            release_label: None,
            release_product: None,
            packages: BTreeMap::new(),
        };
        for (key, value) in &top {
            let at = format!("$.{key}");
            match key.as_str() {
                "release_date" => manifest.release_date = Some(string(value, &at, &bad)?),
                "release_label" => manifest.release_label = Some(string(value, &at, &bad)?),
                "release_product" => manifest.release_product = Some(string(value, &at, &bad)?),
                _ => {
                    let package = parse_package(key, value, &at, &bad)?;
                    manifest.packages.insert(key.clone(), package);
                }
            }
        }
        Ok(manifest)
    }
}

type Bad<'a> = dyn Fn(&str, String) -> Error + 'a;

fn string(value: &Value, at: &str, bad: &Bad<'_>) -> Result<String, Error> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad(at, format!("expected a string, got {}", kind(value))))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn parse_package(key: &str, value: &Value, at: &str, bad: &Bad<'_>) -> Result<Package, Error> {
    let Value::Object(fields) = value else {
        return Err(bad(
            at,
            format!("expected a package object, got {}", kind(value)),
        ));
    };
    let field = |name: &str| -> Result<Option<String>, Error> {
        fields
            .get(name)
            .map(|v| string(v, &format!("{at}.{name}"), bad))
            .transpose()
    };
    let version = field("version")?.ok_or_else(|| bad(at, "no `version`".to_owned()))?;
    let cuda_variants = match fields.get("cuda_variant") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| string(v, &format!("{at}.cuda_variant[{i}]"), bad))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(bad(
                &format!("{at}.cuda_variant"),
                format!("expected a list of strings, got {}", kind(other)),
            ));
        }
    };
    let mut systems = BTreeMap::new();
    for (system, entry) in fields {
        if PACKAGE_FIELDS.contains(&system.as_str()) {
            continue;
        }
        let at = format!("{at}.{system}");
        let Value::Object(record) = entry else {
            return Err(bad(
                &at,
                format!("expected an archive object, got {}", kind(entry)),
            ));
        };
        let archives = if record.contains_key("relative_path") {
            SystemArchives::Single(parse_archive(entry, &at, bad)?)
        } else {
            let mut variants = BTreeMap::new();
            for (variant, archive) in record {
                let at = format!("{at}.{variant}");
                if !variant.starts_with("cuda") || variant_number(variant) == 0 {
                    return Err(bad(
                        &at,
                        "expected `relative_path` or CUDA variants like `cuda12`".to_owned(),
                    ));
                }
                variants.insert(variant.clone(), parse_archive(archive, &at, bad)?);
            }
            SystemArchives::PerCuda(variants)
        };
        systems.insert(system.clone(), archives);
    }
    Ok(Package {
        key: key.to_owned(),
        name: field("name")?.unwrap_or_else(|| key.to_owned()),
        license: field("license")?,
        license_path: field("license_path")?,
        version,
        cuda_variants,
        systems,
    })
}

fn parse_archive(value: &Value, at: &str, bad: &Bad<'_>) -> Result<Archive, Error> {
    let Value::Object(fields) = value else {
        return Err(bad(
            at,
            format!("expected an archive object, got {}", kind(value)),
        ));
    };
    let required = |name: &str| -> Result<String, Error> {
        let value = fields
            .get(name)
            .ok_or_else(|| bad(at, format!("no `{name}`")))?;
        string(value, &format!("{at}.{name}"), bad)
    };
    let relative_path = required("relative_path")?;
    if relative_path.starts_with('/') || relative_path.split('/').any(|part| part == "..") {
        return Err(bad(
            &format!("{at}.relative_path"),
            format!("`{relative_path}` leaves the manifest's folder"),
        ));
    }
    if relative_path.is_empty() || relative_path.ends_with('/') || relative_path.contains('\0') {
        return Err(bad(
            &format!("{at}.relative_path"),
            format!("`{}` does not name a file", relative_path.escape_debug()),
        ));
    }
    let given = required("sha256")?;
    let sha256 = crate::fetch::parse_sha256(&given).ok_or_else(|| {
        bad(
            &format!("{at}.sha256"),
            format!("`{}` is not 64 hex digits", given.escape_debug()),
        )
    })?;
    // NVIDIA writes the size as a string; a number is accepted too.
    let size = match fields.get("size") {
        Some(Value::String(text)) => text.parse::<u64>().ok(),
        Some(Value::Number(number)) => number.as_u64(),
        _ => None,
    }
    .ok_or_else(|| {
        bad(
            &format!("{at}.size"),
            "expected a byte count (a string of digits)".to_owned(),
        )
    })?;
    let md5 = fields
        .get("md5")
        .map(|v| string(v, &format!("{at}.md5"), bad))
        .transpose()?;
    Ok(Archive {
        relative_path,
        sha256,
        md5,
        size,
    })
}

/// NVIDIA's system name for a machine architecture, spelt as `std::env::consts::ARCH`
/// spells it: `linux-sbsa` for 64-bit Arm (servers and unified Jetson packages alike),
/// `linux-x86_64` otherwise.
pub fn system_for_arch(arch: &str) -> &'static str {
    if arch == "aarch64" {
        "linux-sbsa"
    } else {
        "linux-x86_64"
    }
}

/// NVIDIA's system name for the machine this binary runs on.
pub fn host_system() -> &'static str {
    system_for_arch(std::env::consts::ARCH)
}

#[cfg(test)]
mod system_tests {
    use super::*;

    #[test]
    fn architectures_map_to_nvidia_system_names() {
        assert_eq!(system_for_arch("aarch64"), "linux-sbsa");
        assert_eq!(system_for_arch("x86_64"), "linux-x86_64");
        let expected = if cfg!(target_arch = "aarch64") {
            "linux-sbsa"
        } else {
            "linux-x86_64"
        };
        assert_eq!(host_system(), expected);
    }
}
