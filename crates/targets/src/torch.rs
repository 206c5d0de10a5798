//! PyTorch's extension builder (`torch/utils/cpp_extension.py`) accepts only the
//! capabilities of its `supported_arches` list in `TORCH_CUDA_ARCH_LIST` and raises
//! `ValueError: Unknown CUDA arch` for any other. This reads that list, says which
//! requested capabilities it refuses, and adds them in a way that can be undone to the
//! byte: the added items and a marker comment are the only bytes that change.

use std::path::{Path, PathBuf};

use cudapkgs_tree::dir::{Dir, Kind};

use crate::Error;
use crate::target::Request;

/// The list's name in `_get_cuda_arch_flags`.
const LIST: &str = "supported_arches = [";
/// Ends the line a rewrite added items to; what follows it names them.
const MARKER: &str = "  # cudapkgs targets torch --allow added: ";

/// How the builder turns `9.0a` into nvcc's `sm_90a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Naming {
    /// `major, minor = version.split('.')`: right for two-digit majors and suffixes.
    MajorMinor,
    /// A form this crate does not know: the added items may be misnamed.
    Unknown,
}

/// The allow-list of one `cpp_extension.py`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    /// Capabilities as PyTorch writes them (`9.0a`), in the file's order, added ones
    /// included.
    pub supported: Vec<String>,
    /// Items an earlier `--allow` added (empty when the file is PyTorch's own).
    pub added: Vec<String>,
    pub naming: Naming,
}

/// A PyTorch installation found below a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// `…/torch/utils/cpp_extension.py`, relative to the folder searched.
    pub cpp_extension: PathBuf,
    /// `torch.__version__` and `torch.version.cuda`, from `torch/version.py`.
    pub version: Option<String>,
    pub cuda: Option<String>,
}

/// Reads the allow-list; an error names what is missing.
pub fn read_allow_list(text: &str, path: &Path) -> Result<AllowList, Error> {
    let (items_range, _) = list_range(text).ok_or_else(|| Error::Torch {
        path: path.to_owned(),
        message: "no `supported_arches = [...]` list of capabilities in it".to_owned(),
    })?;
    let supported = quoted_items(&text[items_range]);
    let added = text
        .lines()
        .find_map(|line| {
            line.split_once(MARKER)
                .map(|(_, added)| quoted_items(added))
        })
        .unwrap_or_default();
    let naming = if text.contains("major, minor = version.split('.')")
        && text.contains("num = f\"{major}{minor}\"")
    {
        Naming::MajorMinor
    } else {
        Naming::Unknown
    };
    Ok(AllowList {
        supported,
        added,
        naming,
    })
}

/// The items of `TORCH_CUDA_ARCH_LIST` for the request (`9.0`, `10.0f`), without
/// `+PTX`, that the list refuses.
pub fn refused(list: &AllowList, request: &Request) -> Vec<String> {
    let mut refused: Vec<String> = request
        .options
        .torch_arch_list()
        .split(';')
        .map(|item| item.trim_end_matches("+PTX").to_owned())
        .filter(|item| !list.supported.contains(item))
        .collect();
    refused.dedup();
    refused
}

/// The text with `items` added to the list (after undoing an earlier addition, so
/// that one marker always says everything added).
pub fn allow(text: &str, items: &[String], path: &Path) -> Result<String, Error> {
    let earlier = read_allow_list(text, path)?.added;
    let original = undo(text, path)?.unwrap_or_else(|| text.to_owned());
    let list = read_allow_list(&original, path)?;
    let mut wanted: Vec<&String> = earlier.iter().chain(items).collect();
    wanted.retain(|item| !list.supported.contains(item));
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(original);
    }
    let (items_range, _) = list_range(&original).expect("read above");
    // After the last item's closing quote: the list's own bytes stay as they were.
    let last_quote = original[items_range.clone()]
        .rfind(['\'', '"'])
        .map(|i| items_range.start + i + 1)
        .ok_or_else(|| Error::Torch {
            path: path.to_owned(),
            message: "the supported_arches list is empty".to_owned(),
        })?;
    let quote = &original[last_quote - 1..last_quote];
    let listed: Vec<String> = wanted
        .iter()
        .map(|item| format!("{quote}{item}{quote}"))
        .collect();
    let inserted = format!(", {}", listed.join(", "));
    let line_end = original[last_quote..]
        .find('\n')
        .map_or(original.len(), |i| last_quote + i);
    Ok(format!(
        "{}{inserted}{}{MARKER}{}{}",
        &original[..last_quote],
        &original[last_quote..line_end],
        listed.join(", "),
        &original[line_end..]
    ))
}

/// The text before an earlier `allow`, exactly; `None` when the file carries no
/// addition. A marker whose addition is not where it was put (the file was edited
/// since) is an error, and nothing is guessed.
pub fn undo(text: &str, path: &Path) -> Result<Option<String>, Error> {
    let Some(marker) = text.find(MARKER) else {
        return Ok(None);
    };
    let line_start = text[..marker].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[marker..].find('\n').map_or(text.len(), |i| marker + i);
    let listed = &text[marker + MARKER.len()..line_end];
    let inserted = format!(", {listed}");
    let line = &text[line_start..marker];
    let Some(at) = line.rfind(&inserted) else {
        return Err(Error::Torch {
            path: path.to_owned(),
            message: "the items named by the cudapkgs marker are not where they were added; the file was changed since: reinstall torch to restore it".to_owned(),
        });
    };
    let at = line_start + at;
    Ok(Some(format!(
        "{}{}{}",
        &text[..at],
        &text[at + inserted.len()..marker],
        &text[line_end..]
    )))
}

/// The bytes between `[` and `]` of the list, and the list's start.
fn list_range(text: &str) -> Option<(std::ops::Range<usize>, usize)> {
    let start = text.find(LIST)?;
    let open = start + LIST.len();
    let close = open + text[open..].find(']')?;
    Some((open..close, start))
}

fn quoted_items(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find(['\'', '"']) {
        let quote = &rest[open..=open];
        let Some(close) = rest[open + 1..].find(quote) else {
            break;
        };
        items.push(rest[open + 1..open + 1 + close].to_owned());
        rest = &rest[open + close + 2..];
    }
    items
}

/// Finds PyTorch below `root`: a venv (`lib/python3.*/site-packages/torch`), a
/// `site-packages` folder, the `torch` package itself, or `cpp_extension.py` named
/// directly. Returns the folder the installations' paths are relative to (`root`, or
/// the named file's folder). Folders are walked through handles, never through links.
pub fn find(root: &Path) -> Result<(PathBuf, Vec<Installation>), Error> {
    let io = |source| Error::Io {
        path: root.to_owned(),
        source,
    };
    if !std::fs::metadata(root).map_err(io)?.is_dir() {
        let folder = root
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let installation = Installation {
            cpp_extension: PathBuf::from(root.file_name().unwrap_or_default()),
            version: None,
            cuda: None,
        };
        return Ok((folder.to_owned(), vec![installation]));
    }
    let dir = Dir::open(root).map_err(io)?;
    let mut packages = Vec::new();
    let mut consider = |torch: PathBuf| {
        let file = torch.join("utils/cpp_extension.py");
        if matches!(dir.kind(&file), Ok(Some(Kind::File))) {
            packages.push(torch);
        }
    };
    consider(PathBuf::new());
    consider(PathBuf::from("torch"));
    consider(PathBuf::from("site-packages/torch"));
    for lib in ["lib", "lib64"] {
        let Ok(entries) = dir.entries(Path::new(lib)) else {
            continue;
        };
        for (name, kind) in entries {
            if kind == Kind::Folder && name.to_string_lossy().starts_with("python") {
                consider(Path::new(lib).join(name).join("site-packages/torch"));
            }
        }
    }
    let installations = packages
        .into_iter()
        .map(|torch| {
            let version = dir
                .read(&torch.join("version.py"), 1 << 16)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            let field = |name: &str| {
                version
                    .as_deref()
                    .and_then(|text| version_field(text, name))
            };
            Installation {
                cpp_extension: torch.join("utils/cpp_extension.py"),
                version: field("__version__"),
                cuda: field("cuda"),
            }
        })
        .collect();
    Ok((root.to_owned(), installations))
}

/// `name = '…'` (or `name: Optional[str] = '…'`) in `torch/version.py`.
fn version_field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        if !rest.starts_with([' ', ':', '=']) {
            return None;
        }
        let value = rest.split_once('=')?.1.trim();
        quoted_items(value).into_iter().next()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNIPPET: &str = "def _get_cuda_arch_flags():\n    supported_arches = ['3.5', '9.0a',\n                        '12.0', '12.1a']\n    valid_arch_strings = supported_arches + [s + \"+PTX\" for s in supported_arches]\n";

    #[test]
    fn allow_then_undo_gives_the_same_bytes() {
        let path = Path::new("cpp_extension.py");
        let list = read_allow_list(SNIPPET, path).expect("list");
        assert_eq!(list.supported, ["3.5", "9.0a", "12.0", "12.1a"]);
        assert!(list.added.is_empty());
        let patched = allow(SNIPPET, &["10.0f".into(), "12.1f".into()], path).expect("allow");
        assert!(patched.contains(
            "'12.1a', '10.0f', '12.1f']  # cudapkgs targets torch --allow added: '10.0f', '12.1f'\n"
        ));
        let list = read_allow_list(&patched, path).expect("patched list");
        assert_eq!(
            list.supported,
            ["3.5", "9.0a", "12.0", "12.1a", "10.0f", "12.1f"]
        );
        assert_eq!(list.added, ["10.0f", "12.1f"]);
        assert_eq!(
            undo(&patched, path).expect("undo").as_deref(),
            Some(SNIPPET)
        );
        // A second allow keeps one marker with everything added, and undoes to the same.
        let again = allow(&patched, &["11.0f".into()], path).expect("again");
        assert_eq!(again.matches(MARKER).count(), 1);
        assert_eq!(
            read_allow_list(&again, path).expect("list").added,
            ["10.0f", "12.1f", "11.0f"]
        );
        assert_eq!(undo(&again, path).expect("undo").as_deref(), Some(SNIPPET));
        assert_eq!(undo(SNIPPET, path).expect("nothing to undo"), None);
    }

    #[test]
    fn an_edited_file_is_not_guessed_at() {
        let path = Path::new("cpp_extension.py");
        let patched = allow(SNIPPET, &["10.0f".into()], path).expect("allow");
        let edited = patched.replace("'10.0f']", "'10.0']");
        assert!(undo(&edited, path).is_err());
        assert!(read_allow_list("x = 1\n", path).is_err());
    }

    #[test]
    fn versions_from_version_py() {
        let text = "__version__ = '2.11.0'\ncuda: Optional[str] = '13.0'\ncudnn = None\n";
        assert_eq!(
            version_field(text, "__version__").as_deref(),
            Some("2.11.0")
        );
        assert_eq!(version_field(text, "cuda").as_deref(), Some("13.0"));
        assert_eq!(version_field(text, "cudnn"), None);
    }
}
