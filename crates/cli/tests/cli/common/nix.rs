//! Real Nix as the oracle: its answers about a store under a root folder.

use std::path::Path;
use std::process::Command;

/// `nix path-info --json ARGS` in the Nix store under `root` (no substituters asked).
pub(crate) fn path_info(root: &Path, args: &[&str]) -> serde_json::Value {
    let output = Command::new("nix")
        .env("NIX_CONFIG", "substituters = ")
        .args([
            "--extra-experimental-features",
            "nix-command",
            "path-info",
            "--json",
        ])
        .arg("--store")
        .arg(format!("local?root={}", root.display()))
        .args(args)
        .output()
        .expect("nix path-info runs");
    assert!(
        output.status.success(),
        "nix path-info {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json")
}
