//! Which package owns each file of a folder: Python distributions by their
//! `*.dist-info/RECORD` (names relative to the folder holding the `.dist-info`), conda
//! packages by their `conda-meta/*.json` (the `files` list, relative to the environment
//! that holds `conda-meta`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::walk::{Input, lexical};
use crate::Error;

/// The package owning each file, by the file's path (links resolved).
#[derive(Debug, Clone, Default)]
pub struct Owners {
    by_file: HashMap<PathBuf, String>,
    /// Files the records of more than one package list (one installed over the
    /// other's), with every such package.
    shared: HashMap<PathBuf, Vec<String>>,
}

impl Owners {
    /// The package owning `file` (for a file several list, the one whose record was
    /// read last: which was installed last is not recorded).
    pub fn get(&self, file: &Path) -> Option<&String> {
        self.by_file.get(file)
    }

    /// Every package that lists `file`, when more than one does.
    pub fn sharing(&self, file: &Path) -> Option<&[String]> {
        self.shared.get(file).map(Vec::as_slice)
    }

    fn insert(&mut self, file: PathBuf, package: &str) {
        if let Some(previous) = self.by_file.get(&file)
            && previous != package
        {
            let sharing = self
                .shared
                .entry(file.clone())
                .or_insert_with(|| vec![previous.clone()]);
            if !sharing.iter().any(|known| known == package) {
                sharing.push(package.to_owned());
            }
        }
        self.by_file.insert(file, package.to_owned());
    }
}

/// What a conda package's record says that matters here.
#[derive(Debug, Deserialize)]
struct CondaRecord {
    name: String,
    #[serde(default)]
    files: Vec<String>,
}

/// The owners of the files of every folder in `inputs`. Records name files by their
/// text, so they are matched without touching the files: the walk reached every
/// record's folder without passing a link, so a record's name, joined to it, is the
/// path of the file (links resolved) that the graph knows it by.
pub fn owners(inputs: &[Input]) -> Result<Owners, Error> {
    let mut owners = Owners::default();
    for input in inputs {
        for (relative, _) in input.regular_files() {
            let (Some(parent), Some(name)) = (relative.parent(), relative.file_name()) else {
                continue;
            };
            let record = input.root.join(relative);
            if name == "RECORD" && parent.extension().is_some_and(|e| e == "dist-info") {
                let folder = input.root.join(parent.parent().unwrap_or(Path::new("")));
                read_record(&record, &folder, &mut owners)?;
            } else if parent.file_name().is_some_and(|p| p == "conda-meta")
                && relative.extension().is_some_and(|e| e == "json")
            {
                let prefix = input.root.join(parent.parent().unwrap_or(Path::new("")));
                read_conda_record(&record, &prefix, &mut owners)?;
            }
        }
    }
    Ok(owners)
}

/// A wheel's `RECORD`: `path,hash,size` lines, a path with a comma quoted; the
/// distribution's name is the `.dist-info` folder's up to its version.
fn read_record(record: &Path, folder: &Path, owners: &mut Owners) -> Result<(), Error> {
    let dist_info = record.parent().and_then(Path::file_stem);
    let name = dist_info
        .map(|stem| stem.to_string_lossy())
        .unwrap_or_default();
    let distribution = name.split('-').next().unwrap_or_default().to_owned();
    let text = std::fs::read_to_string(record).map_err(|e| Error::io(record, e))?;
    for line in text.lines() {
        let file = match line.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next().unwrap_or_default(),
            None => line.split(',').next().unwrap_or_default(),
        };
        if !file.is_empty() {
            owners.insert(lexical(&folder.join(file)), &distribution);
        }
    }
    Ok(())
}

/// A conda package's record in `conda-meta`: its `name` and its `files`.
fn read_conda_record(record: &Path, prefix: &Path, owners: &mut Owners) -> Result<(), Error> {
    let text = std::fs::read(record).map_err(|e| Error::io(record, e))?;
    let parsed: CondaRecord = serde_json::from_slice(&text).map_err(|e| Error::Record {
        path: record.to_owned(),
        problem: format!("not a conda package record: {e}"),
    })?;
    for file in &parsed.files {
        owners.insert(lexical(&prefix.join(file)), &parsed.name);
    }
    Ok(())
}
