//! Product names (`H100`, `RTX 4090`, `Jetson Orin`) mapped to capabilities, so users
//! can name the GPU they own instead of looking up its capability.

use crate::capability::Capability;
use crate::version::CudaVersion;

/// A GPU product and the capability it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    /// The name as NVIDIA writes it.
    pub name: &'static str,
    pub capability: Capability,
    /// For products whose capability number changed between CUDA releases (Jetson Thor
    /// was 10.1 before CUDA 13 and is 11.0 since): the capability before that release.
    pub renumbered: Option<(CudaVersion, Capability)>,
}

impl Product {
    /// The capability under the given CUDA release.
    pub fn capability_for(&self, cuda: CudaVersion) -> Capability {
        match self.renumbered {
            Some((since, before)) if cuda < since => before,
            _ => self.capability,
        }
    }
}

const fn product(name: &'static str, major: u8, minor: u8) -> Product {
    Product {
        name,
        capability: Capability::baseline(major, minor),
        renumbered: None,
    }
}

/// Known products, grouped by generation.
pub static PRODUCTS: &[Product] = &[
    product("Tesla K40", 3, 5),
    product("Tesla K80", 3, 7),
    product("GTX 750 Ti", 5, 0),
    product("Quadro M6000", 5, 2),
    product("Tesla M40", 5, 2),
    product("Tesla M60", 5, 2),
    product("GTX 980", 5, 2),
    product("GTX 970", 5, 2),
    product("GTX Titan X", 5, 2),
    product("Tesla P100", 6, 0),
    product("Tesla P40", 6, 1),
    product("Tesla P4", 6, 1),
    product("GTX 1080 Ti", 6, 1),
    product("GTX 1080", 6, 1),
    product("GTX 1070", 6, 1),
    product("GTX 1060", 6, 1),
    product("Titan Xp", 6, 1),
    product("Tesla V100", 7, 0),
    product("Titan V", 7, 0),
    product("Jetson AGX Xavier", 7, 2),
    product("Jetson Xavier NX", 7, 2),
    product("Tesla T4", 7, 5),
    product("RTX 2080 Ti", 7, 5),
    product("RTX 2080", 7, 5),
    product("RTX 2070", 7, 5),
    product("RTX 2060", 7, 5),
    product("GTX 1660 Ti", 7, 5),
    product("Titan RTX", 7, 5),
    product("Quadro RTX 6000", 7, 5),
    product("Quadro RTX 8000", 7, 5),
    product("A100", 8, 0),
    product("A800", 8, 0),
    product("A30", 8, 0),
    product("A10", 8, 6),
    product("A10G", 8, 6),
    product("A16", 8, 6),
    product("A2", 8, 6),
    product("A40", 8, 6),
    product("RTX A4000", 8, 6),
    product("RTX A5000", 8, 6),
    product("RTX A6000", 8, 6),
    product("RTX 3090 Ti", 8, 6),
    product("RTX 3090", 8, 6),
    product("RTX 3080", 8, 6),
    product("RTX 3070", 8, 6),
    product("RTX 3060", 8, 6),
    product("Jetson AGX Orin", 8, 7),
    product("Jetson Orin NX", 8, 7),
    product("Jetson Orin Nano", 8, 7),
    product("Jetson Orin", 8, 7),
    product("RTX 4090", 8, 9),
    product("RTX 4080", 8, 9),
    product("RTX 4070", 8, 9),
    product("RTX 4060", 8, 9),
    product("RTX 6000 Ada", 8, 9),
    product("L4", 8, 9),
    product("L20", 8, 9),
    product("L40", 8, 9),
    product("L40S", 8, 9),
    product("H100", 9, 0),
    product("H200", 9, 0),
    product("H800", 9, 0),
    product("H20", 9, 0),
    product("GH200", 9, 0),
    product("B100", 10, 0),
    product("B200", 10, 0),
    product("GB200", 10, 0),
    product("B300", 10, 3),
    product("GB300", 10, 3),
    Product {
        name: "Jetson Thor",
        capability: Capability::baseline(11, 0),
        renumbered: Some((CudaVersion::new(13, 0), Capability::baseline(10, 1))),
    },
    product("RTX 5090", 12, 0),
    product("RTX 5080", 12, 0),
    product("RTX 5070 Ti", 12, 0),
    product("RTX 5070", 12, 0),
    product("RTX 5060 Ti", 12, 0),
    product("RTX 5060", 12, 0),
    product("RTX PRO 6000 Blackwell", 12, 0),
    product("DGX Spark", 12, 1),
    product("GB10", 12, 1),
];

/// Lowercase, without spaces, dashes and the brand words people add or leave out.
fn normalize(name: &str) -> String {
    let mut text: String = name
        .to_ascii_lowercase()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    for brand in ["nvidia", "geforce", "tesla"] {
        text = text.replace(brand, "");
    }
    text
}

/// Finds a product by name, forgiving case, spacing and brand words
/// (`nvidia h100`, `GeForce RTX 4090`, `rtx-4090` all find `RTX 4090`), and the
/// memory and form-factor words of the names the driver and nvidia-smi report
/// (`NVIDIA H100 80GB HBM3`, `NVIDIA A100-SXM4-40GB`, `H100 PCIe`, `NVIDIA GeForce RTX
/// 4090 Laptop GPU`), which do not change the capability.
pub fn find_product(name: &str) -> Option<&'static Product> {
    let by_name = |wanted: &str| {
        PRODUCTS
            .iter()
            .find(|product| normalize(product.name) == wanted)
    };
    let wanted = normalize(name);
    if wanted.is_empty() {
        return None;
    }
    by_name(&wanted).or_else(|| {
        let kept: String = words(name)
            .into_iter()
            .filter(|word| !is_variant_word(word))
            .collect();
        (!kept.is_empty() && kept != wanted)
            .then(|| by_name(&kept))
            .flatten()
    })
}

/// A word of a reported device name that names memory, a form factor or an edition:
/// `80gb`, `hbm3`, `sxm4`, `pcie`, `nvl`, `laptop`, `gpu`, `generation`.
fn is_variant_word(word: &str) -> bool {
    const WORDS: &[&str] = &[
        "pcie",
        "nvl",
        "laptop",
        "gpu",
        "generation",
        "maxq",
        "max",
        "q",
        "oem",
        "lhr",
        "server",
        "workstation",
        "edition",
        "mig",
        "nvlink",
        "dgx",
    ];
    let memory = word
        .strip_suffix("gb")
        .is_some_and(|size| !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()));
    let prefixed = |prefix: &str| {
        word.strip_prefix(prefix)
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit() || b == b'e'))
    };
    memory || prefixed("hbm") || prefixed("sxm") || prefixed("gddr") || WORDS.contains(&word)
}

/// The words of a name, lowercase, without brand words.
fn words(name: &str) -> Vec<String> {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::to_ascii_lowercase)
        .filter(|word| !word.is_empty() && !["nvidia", "geforce", "tesla"].contains(&word.as_str()))
        .collect()
}

/// Products that look like what was typed, for "did you mean" hints after a failed
/// lookup: every typed word appears in the product's name, or the names contain each
/// other once spaces are gone.
pub fn similar_products(name: &str) -> Vec<&'static Product> {
    let wanted = normalize(name);
    if wanted.len() < 2 {
        return Vec::new();
    }
    let wanted_words = words(name);
    PRODUCTS
        .iter()
        .filter(|product| {
            let known = normalize(product.name);
            let known_words = words(product.name);
            let every_word_found = wanted_words.iter().all(|word| {
                known_words
                    .iter()
                    .any(|known| known.contains(word.as_str()))
            });
            every_word_found || known.contains(&wanted) || wanted.contains(&known)
        })
        .collect()
}

/// Every product with the given capability (under the given CUDA release).
pub fn products_with(capability: Capability, cuda: CudaVersion) -> Vec<&'static Product> {
    PRODUCTS
        .iter()
        .filter(|product| product.capability_for(cuda) == capability)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::lookup;

    #[test]
    fn finds_products_by_the_names_the_driver_reports() {
        for (name, expected) in [
            ("NVIDIA H100 80GB HBM3", "H100"),
            ("NVIDIA H100 PCIe", "H100"),
            ("H100 SXM", "H100"),
            ("NVIDIA H100 NVL", "H100"),
            ("NVIDIA H200", "H200"),
            ("NVIDIA A100-SXM4-40GB", "A100"),
            ("NVIDIA A100 80GB PCIe", "A100"),
            ("Tesla V100-SXM2-16GB", "Tesla V100"),
            ("NVIDIA GeForce RTX 4090 Laptop GPU", "RTX 4090"),
            ("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada"),
            ("NVIDIA GH200 480GB", "GH200"),
            (
                "NVIDIA RTX PRO 6000 Blackwell Server Edition",
                "RTX PRO 6000 Blackwell",
            ),
        ] {
            assert_eq!(
                find_product(name).map(|product| product.name),
                Some(expected),
                "{name}"
            );
        }
        // Variant words alone name nothing, and do not make a wrong name right.
        assert_eq!(find_product("NVIDIA 80GB PCIe"), None);
        assert_eq!(find_product("H300 SXM5"), None);
    }

    #[test]
    fn finds_products_however_they_are_written() {
        for (name, expected) in [
            ("H100", "9.0"),
            ("nvidia h100", "9.0"),
            ("GeForce RTX 4090", "8.9"),
            ("rtx-4090", "8.9"),
            ("NVIDIA A100", "8.0"),
            ("L40S", "8.9"),
            ("B200", "10.0"),
            ("RTX 5090", "12.0"),
            ("Jetson Orin", "8.7"),
            ("DGX Spark", "12.1"),
            ("T4", "7.5"),
            ("Tesla T4", "7.5"),
            ("V100", "7.0"),
            ("H200", "9.0"),
        ] {
            let product = find_product(name).unwrap_or_else(|| panic!("{name} not found"));
            assert_eq!(product.capability.to_string(), expected, "{name}");
        }
        assert!(find_product("RTX 9999").is_none());
        assert!(find_product("").is_none());
    }

    #[test]
    fn thor_changes_number_with_cuda_13() {
        let thor = find_product("jetson thor").expect("thor");
        assert_eq!(
            thor.capability_for(CudaVersion::new(12, 9)).to_string(),
            "10.1"
        );
        assert_eq!(
            thor.capability_for(CudaVersion::new(13, 0)).to_string(),
            "11.0"
        );
    }

    #[test]
    fn every_product_has_a_table_row_and_a_unique_name() {
        for product in PRODUCTS {
            assert!(lookup(product.capability).is_some(), "{}", product.name);
            if let Some((_, before)) = product.renumbered {
                assert!(lookup(before).is_some(), "{}", product.name);
            }
            let same: Vec<_> = PRODUCTS
                .iter()
                .filter(|p| normalize(p.name) == normalize(product.name))
                .collect();
            assert_eq!(same.len(), 1, "{}", product.name);
        }
    }

    #[test]
    fn suggests_similar_names() {
        let names: Vec<&str> = similar_products("rtx 6000")
            .iter()
            .map(|p| p.name)
            .collect();
        assert!(names.contains(&"Quadro RTX 6000"), "{names:?}");
        assert!(names.contains(&"RTX 6000 Ada"), "{names:?}");
        assert!(names.contains(&"RTX PRO 6000 Blackwell"), "{names:?}");
        assert!(similar_products("x").is_empty());
    }

    #[test]
    fn lists_products_per_capability() {
        let names: Vec<&str> = products_with("9.0".parse().expect("9.0"), CudaVersion::new(12, 9))
            .iter()
            .map(|p| p.name)
            .collect();
        assert!(
            names.contains(&"H100") && names.contains(&"GH200"),
            "{names:?}"
        );
    }
}
