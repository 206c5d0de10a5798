//! What a build embeds for a GPU: SASS for a capability, PTX for a virtual
//! architecture, and the spellings each build system writes them in.

use std::collections::BTreeSet;
use std::fmt;

use cudapkgs_caps::{Capability, ResolvedOptions};

/// One nvcc code target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Machine code for one capability: `sm_90a`.
    Sass(Capability),
    /// PTX for a virtual architecture, compiled by the driver at load time: `compute_90`.
    Ptx(Capability),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Sass(capability) => f.write_str(&capability.sm_name()),
            Target::Ptx(capability) => f.write_str(&capability.compute_name()),
        }
    }
}

/// The targets a place in a build forces: a fixed set, or one decided when the build
/// runs (nvcc's `native`, `all`, `all-major`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forced {
    Targets(BTreeSet<Target>),
    /// A keyword: `native` (the GPUs of the build machine), `all`, `all-major`.
    Keyword(&'static str),
}

impl Forced {
    /// The spellings reported to people and in JSON: `sm_80`, `compute_90`, `native`.
    pub fn names(&self) -> Vec<String> {
        match self {
            Forced::Targets(targets) => targets.iter().map(ToString::to_string).collect(),
            Forced::Keyword(word) => vec![(*word).to_owned()],
        }
    }

    /// The capabilities with SASS.
    pub fn sass(&self) -> BTreeSet<Capability> {
        match self {
            Forced::Targets(targets) => targets
                .iter()
                .filter_map(|target| match target {
                    Target::Sass(capability) => Some(*capability),
                    Target::Ptx(_) => None,
                })
                .collect(),
            Forced::Keyword(_) => BTreeSet::new(),
        }
    }
}

/// The keywords nvcc and CMake accept in place of a list.
pub(crate) fn keyword(text: &str) -> Option<&'static str> {
    match text {
        "native" => Some("native"),
        "all" => Some("all"),
        "all-major" => Some("all-major"),
        _ => None,
    }
}

/// What the user asked for: the exact targets of the standard options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub targets: BTreeSet<Target>,
    pub options: ResolvedOptions,
}

impl Request {
    pub fn new(options: ResolvedOptions) -> Self {
        let mut targets: BTreeSet<Target> = options
            .capabilities
            .iter()
            .copied()
            .map(Target::Sass)
            .collect();
        targets.extend(options.ptx.map(Target::Ptx));
        Request { targets, options }
    }

    /// The targets the request comes to in a kind's own spelling: PyTorch's and Meson's
    /// lists have no PTX-only item (`9.0+PTX` adds SASS for 9.0), nor has TensorFlow's
    /// (`compute_90`), so a request whose PTX target has no SASS comes to one more
    /// target there. That is the best such a place can say, and what it is compared with.
    pub fn expressed_as(&self, kind: crate::finding::Kind) -> BTreeSet<Target> {
        use crate::finding::Kind;
        let (text, separators, parse_item): (String, &[char], ItemParser) = match kind {
            Kind::TorchArchList | Kind::MesonArchFlags => {
                (self.options.torch_arch_list(), &[';'], torch_item)
            }
            Kind::TensorflowCapabilities => (
                self.options.tensorflow_capabilities(),
                &[','],
                tensorflow_item,
            ),
            _ => return self.targets.clone(),
        };
        match parse_list(&text, separators, parse_item) {
            Some(Forced::Targets(targets)) => targets,
            _ => self.targets.clone(),
        }
    }

    pub fn capabilities(&self) -> BTreeSet<Capability> {
        self.options.capabilities.iter().copied().collect()
    }

    /// The values of one `-gencode` each, one per virtual architecture, with SASS and PTX
    /// of the same architecture in nvcc's bracket form: `arch=compute_90,code=[sm_90,compute_90]`.
    /// The fewest values that say the whole request.
    pub fn gencode_values(&self) -> Vec<String> {
        let mut values: Vec<String> = self
            .options
            .capabilities
            .iter()
            .map(|capability| {
                if self.options.ptx == Some(*capability) {
                    format!(
                        "arch={compute},code=[{sm},{compute}]",
                        compute = capability.compute_name(),
                        sm = capability.sm_name()
                    )
                } else {
                    format!(
                        "arch={},code={}",
                        capability.compute_name(),
                        capability.sm_name()
                    )
                }
            })
            .collect();
        if let Some(ptx) = self
            .options
            .ptx
            .filter(|ptx| !self.options.capabilities.contains(ptx))
        {
            values.push(format!(
                "arch={compute},code={compute}",
                compute = ptx.compute_name()
            ));
        }
        values
    }

    /// The nvcc flags, one `-gencode=` per target (no brackets, which a shell could
    /// read as a pattern).
    pub fn nvcc_flags(&self) -> String {
        self.options.nvcc_flags().join(" ")
    }
}

/// Capabilities of GPUs older than the GPU table, still named in old build files
/// (Fermi, Kepler's first, Tegra K1, X1 and X2).
const OLDER_CAPABILITIES: [(u8, u8); 6] = [(2, 0), (2, 1), (3, 0), (3, 2), (5, 3), (6, 2)];

/// Reads one item of a list in some build system's spelling into targets.
pub(crate) type ItemParser = fn(&str, &mut BTreeSet<Target>) -> Option<()>;

/// Parses one capability the way the caps crate does, refusing what no GPU has.
fn capability(text: &str) -> Option<Capability> {
    let capability: Capability = text.parse().ok()?;
    let older = capability.variant() == cudapkgs_caps::Variant::Baseline
        && OLDER_CAPABILITIES.contains(&(capability.major(), capability.minor()));
    (older || cudapkgs_caps::lookup(capability).is_some()).then_some(capability)
}

/// The targets of one `-gencode` value: `arch=compute_80,code=sm_80`,
/// `arch=compute_90,code=[sm_90,compute_90]`, `code="sm_90,compute_90"`. Returns the
/// targets and how many bytes of `text` the value takes; `None` when `text` does not
/// start with such a value.
pub(crate) fn gencode_value(text: &str) -> Option<(BTreeSet<Target>, usize)> {
    let rest = text.strip_prefix("arch=")?;
    let arch_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let arch = &rest[..arch_len];
    if !arch.starts_with("compute_") {
        return None;
    }
    // The virtual architecture must be a real one; the targets are the codes.
    capability(arch)?;
    let after_arch = &rest[arch_len..];
    let codes = after_arch.strip_prefix(",code=")?;
    let consumed_before_codes = "arch=".len() + arch_len + ",code=".len();

    let (open, close) = match codes.as_bytes().first() {
        Some(b'[') => (1, Some(']')),
        Some(b'"') => (1, Some('"')),
        Some(b'\\') if codes.starts_with("\\\"") => (2, Some('"')),
        _ => (0, None),
    };
    let body = &codes[open..];
    let mut targets = BTreeSet::new();
    let mut position = 0;
    loop {
        let item = &body[position..];
        let len = item
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(item.len());
        let name = &item[..len];
        let target = if let Some(digits) = name.strip_prefix("sm_") {
            Target::Sass(capability(digits)?)
        } else if let Some(digits) = name.strip_prefix("compute_") {
            Target::Ptx(capability(digits)?)
        } else if let Some(digits) = name.strip_prefix("lto_") {
            // LTO-IR is compiled like PTX, late, for the named architecture.
            Target::Ptx(capability(digits)?)
        } else {
            return None;
        };
        targets.insert(target);
        position += len;
        // Without brackets or quotes a comma ends the value: nvcc reads what follows
        // as the next keyword.
        if close.is_some() && body[position..].starts_with(',') {
            position += 1;
            continue;
        }
        break;
    }
    let mut consumed = consumed_before_codes + open + position;
    if let Some(close) = close {
        let tail = &body[position..];
        if close == '"' && open == 2 {
            if !tail.starts_with("\\\"") {
                return None;
            }
            consumed += 2;
        } else {
            if !tail.starts_with(close) {
                return None;
            }
            consumed += 1;
        }
    }
    Some((targets, consumed))
}

/// The targets of an `-arch` value: `sm_80` (SASS and PTX, as nvcc reads it),
/// `compute_80` (PTX), or a keyword.
pub(crate) fn arch_value(text: &str) -> Option<Forced> {
    if let Some(word) = keyword(text) {
        return Some(Forced::Keyword(word));
    }
    if let Some(digits) = text.strip_prefix("sm_") {
        let capability = capability(digits)?;
        return Some(Forced::Targets(BTreeSet::from([
            Target::Sass(capability),
            Target::Ptx(capability),
        ])));
    }
    if let Some(digits) = text.strip_prefix("compute_") {
        let capability = capability(digits)?;
        return Some(Forced::Targets(BTreeSet::from([Target::Ptx(capability)])));
    }
    None
}

/// One CMake architecture: `80`, `80-real`, `90a-virtual`.
pub(crate) fn cmake_item(item: &str, into: &mut BTreeSet<Target>) -> Option<()> {
    let (digits, sass, ptx) = if let Some(digits) = item.strip_suffix("-real") {
        (digits, true, false)
    } else if let Some(digits) = item.strip_suffix("-virtual") {
        (digits, false, true)
    } else {
        (item, true, true)
    };
    if digits.contains('.') {
        return None;
    }
    let capability = capability(digits)?;
    if sass {
        into.insert(Target::Sass(capability));
    }
    if ptx {
        into.insert(Target::Ptx(capability));
    }
    Some(())
}

/// PyTorch's named architectures, as its extension builder expands them.
const TORCH_NAMES: &[(&str, &str)] = &[
    ("Kepler+Tesla", "3.7"),
    ("Kepler", "3.5+PTX"),
    ("Maxwell+Tegra", "5.3"),
    ("Maxwell", "5.0;5.2+PTX"),
    ("Pascal", "6.0;6.1+PTX"),
    ("Volta+Tegra", "7.2"),
    ("Volta", "7.0+PTX"),
    ("Turing", "7.5+PTX"),
    ("Ampere+Tegra", "8.7"),
    ("Ampere", "8.0;8.6+PTX"),
    ("Ada", "8.9+PTX"),
    ("Hopper", "9.0+PTX"),
    ("Blackwell+Tegra", "11.0"),
    ("Blackwell", "10.0;10.3;12.0;12.1+PTX"),
];

/// One PyTorch `TORCH_CUDA_ARCH_LIST` item: `8.6`, `8.6+PTX`, `Ampere`.
pub(crate) fn torch_item(item: &str, into: &mut BTreeSet<Target>) -> Option<()> {
    if let Some((_, expansion)) = TORCH_NAMES.iter().find(|(name, _)| *name == item) {
        for part in expansion.split(';') {
            torch_item(part, into)?;
        }
        return Some(());
    }
    let (number, ptx) = match item.strip_suffix("+PTX") {
        Some(number) => (number, true),
        None => (item, false),
    };
    if !number.contains('.') {
        return None;
    }
    let capability = capability(number)?;
    into.insert(Target::Sass(capability));
    if ptx {
        into.insert(Target::Ptx(capability));
    }
    Some(())
}

/// One TensorFlow or XLA item: `sm_80` (SASS), `compute_80` (SASS and PTX), `8.0`
/// (SASS and PTX).
pub(crate) fn tensorflow_item(item: &str, into: &mut BTreeSet<Target>) -> Option<()> {
    if let Some(digits) = item.strip_prefix("sm_") {
        into.insert(Target::Sass(capability(digits)?));
        return Some(());
    }
    let digits = item.strip_prefix("compute_").unwrap_or(item);
    if item.starts_with("compute_") == digits.contains('.') {
        return None;
    }
    let capability = capability(digits)?;
    into.insert(Target::Sass(capability));
    into.insert(Target::Ptx(capability));
    Some(())
}

/// One item of a project's own list, whose meaning the project decides: `80`, `8.0`,
/// `sm_80`, `90a`, `80-real`. Taken as the capability it names.
pub(crate) fn list_item(item: &str) -> Option<Capability> {
    let item = item
        .strip_suffix("-real")
        .or_else(|| item.strip_suffix("-virtual"))
        .or_else(|| item.strip_suffix("+PTX"))
        .unwrap_or(item);
    if item.starts_with("compute_") || item.starts_with("lto_") {
        return None;
    }
    capability(item)
}

/// Parses a whole list with `parse_item`; `None` when an item is not one, or the list
/// is empty.
pub(crate) fn parse_list(
    text: &str,
    separators: &[char],
    parse_item: ItemParser,
) -> Option<Forced> {
    let items: Vec<&str> = text
        .split(separators)
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    if let [only] = items.as_slice() {
        if let Some(word) = keyword(only) {
            return Some(Forced::Keyword(word));
        }
    }
    let mut targets = BTreeSet::new();
    for item in &items {
        parse_item(item, &mut targets)?;
    }
    (!targets.is_empty()).then_some(Forced::Targets(targets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(targets: &BTreeSet<Target>) -> Vec<String> {
        targets.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn gencode_values_in_every_spelling() {
        let (targets, len) = gencode_value("arch=compute_80,code=sm_80 -O3").expect("value");
        assert_eq!(names(&targets), ["sm_80"]);
        assert_eq!(len, "arch=compute_80,code=sm_80".len());
        let text = "arch=compute_90a,code=[sm_90a,compute_90a]\"";
        let (targets, len) = gencode_value(text).expect("value");
        assert_eq!(names(&targets), ["sm_90a", "compute_90a"]);
        assert_eq!(len, text.len() - 1);
        let text = r#"arch=compute_90,code=\"sm_90,compute_90\""#;
        let (targets, len) = gencode_value(text).expect("value");
        assert_eq!(names(&targets), ["sm_90", "compute_90"]);
        assert_eq!(len, text.len());
        let (targets, len) = gencode_value("arch=compute_90,code=compute_90,").expect("ptx");
        assert_eq!(names(&targets), ["compute_90"]);
        assert_eq!(len, "arch=compute_90,code=compute_90".len());
        // Not values: placeholders, unknown capabilities, an unclosed bracket.
        assert!(gencode_value("arch=compute_{num},code=sm_{num}").is_none());
        assert!(gencode_value("arch=compute_99,code=sm_99").is_none());
        assert!(gencode_value("arch=compute_80,code=[sm_80").is_none());
        assert!(gencode_value("arch=sm_80,code=sm_80").is_none());
    }

    #[test]
    fn arch_values_follow_nvcc() {
        assert_eq!(
            arch_value("sm_75").expect("sm").names(),
            ["sm_75", "compute_75"]
        );
        assert_eq!(
            arch_value("compute_75").expect("ptx").names(),
            ["compute_75"]
        );
        assert_eq!(arch_value("native"), Some(Forced::Keyword("native")));
        assert!(arch_value("sm_{x}").is_none());
        assert!(arch_value("gfx90a").is_none());
    }

    #[test]
    fn lists_of_each_build_system() {
        let cmake = parse_list("75-real;86-real;86-virtual", &[';'], cmake_item).expect("cmake");
        assert_eq!(cmake.names(), ["sm_75", "sm_86", "compute_86"]);
        let plain = parse_list("70 80", &[';', ' '], cmake_item).expect("plain");
        assert_eq!(
            plain.names(),
            ["sm_70", "sm_80", "compute_70", "compute_80"]
        );
        let torch = parse_list("7.5;Ampere;9.0a", &[';', ' '], torch_item).expect("torch");
        assert_eq!(
            torch.names(),
            ["sm_75", "sm_80", "sm_86", "sm_90a", "compute_86"]
        );
        let tf = parse_list("sm_75,compute_86", &[','], tensorflow_item).expect("tf");
        assert_eq!(tf.names(), ["sm_75", "sm_86", "compute_86"]);
        assert_eq!(
            parse_list("native", &[';'], cmake_item),
            Some(Forced::Keyword("native"))
        );
        assert!(parse_list("80;${EXTRA}", &[';'], cmake_item).is_none());
        assert!(parse_list("", &[';'], cmake_item).is_none());
        assert_eq!(list_item("80-real"), Some("8.0".parse().expect("cap")));
        assert_eq!(list_item("9.0a"), Some("9.0a".parse().expect("cap")));
        assert_eq!(list_item("compute_90"), None);
    }
}
