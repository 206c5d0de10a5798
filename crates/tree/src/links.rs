//! Where the links of a tree lead, resolved as the kernel would, over a copy of the tree's
//! shape read once.
//!
//! Every folder is listed and every link read once; resolving is then done in memory, and
//! each link is resolved once, whatever number of other links pass through it (a link met
//! on the way contributes where it leads and the links it followed). Checking a tree
//! costs the size of the tree and of its link targets, not their product with the depth.
//!
//! Links a caller will make later can be added before resolving ([`LinkTree::plan_link`]),
//! so that a tree is checked as it will be, before anything is made.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::dir::{Dir, EscapingLink, Kind};

/// The most links one resolution follows, as Linux's `MAXSYMLINKS`.
pub const MAX_LINK_HOPS: usize = 40;

/// What rising to the top of the tree means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Nothing may rise above the tree's top folder.
    Folder,
    /// The top folder's sub-folders are trees placed side by side (a package's outputs,
    /// each its own store path): a link may rise above one of them only to go straight
    /// into another; anything else there, or the top folder itself, is outside.
    SideBySide,
}

#[derive(Debug)]
enum Node {
    Folder {
        parent: Option<usize>,
        children: BTreeMap<OsString, usize>,
    },
    Link {
        parent: usize,
        target: PathBuf,
    },
    /// A file, or anything else that is not followed.
    Other,
}

/// Where a resolution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// At a folder that exists.
    Folder(usize),
    /// Past a missing component or a file, at this depth below the top: nothing further
    /// exists, but `..` still counts, so a dangling link cannot point out either.
    Lexical(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    At(Place),
    Leaves,
    Loops,
}

/// A link's own resolution, once known.
#[derive(Debug, Clone, Copy)]
enum Resolved {
    Pending,
    InProgress,
    /// Where it leads, and how many links that followed.
    Done(Outcome, usize),
}

/// The folders, files and links of a tree, read once.
#[derive(Debug)]
pub struct LinkTree {
    nodes: Vec<Node>,
    /// Every link with its path, in the order of [`Dir::files`] (planned ones after).
    links: Vec<(PathBuf, usize)>,
    /// The depth of each folder below the top (0 for the top).
    depth: Vec<usize>,
}

const TOP: usize = 0;

impl LinkTree {
    /// Lists every folder under `dir` and reads every link, following none.
    pub fn read(dir: &Dir) -> io::Result<LinkTree> {
        let mut tree = LinkTree {
            nodes: vec![Node::Folder {
                parent: None,
                children: BTreeMap::new(),
            }],
            links: Vec::new(),
            depth: vec![0],
        };
        let mut pending = vec![(PathBuf::new(), TOP)];
        while let Some((relative, folder)) = pending.pop() {
            for (name, kind) in dir.entries(&relative)? {
                let path = relative.join(&name);
                let node = match kind {
                    Kind::Folder => {
                        let node = tree.add_folder(folder);
                        pending.push((path, node));
                        node
                    }
                    Kind::Symlink => {
                        let target = dir.read_link(&path)?;
                        let node = tree.add(Node::Link {
                            parent: folder,
                            target,
                        });
                        tree.links.push((path, node));
                        node
                    }
                    Kind::File | Kind::Special(_) => tree.add(Node::Other),
                };
                tree.children_mut(folder).insert(name, node);
            }
        }
        // Path order, component by component: the order of `Dir::files`.
        tree.links.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(tree)
    }

    fn add(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.depth.push(0);
        self.nodes.len() - 1
    }

    fn add_folder(&mut self, parent: usize) -> usize {
        let node = self.add(Node::Folder {
            parent: Some(parent),
            children: BTreeMap::new(),
        });
        self.depth[node] = self.depth[parent] + 1;
        node
    }

    fn children_mut(&mut self, folder: usize) -> &mut BTreeMap<OsString, usize> {
        match &mut self.nodes[folder] {
            Node::Folder { children, .. } => children,
            _ => unreachable!("only folders hold entries"),
        }
    }

    fn child(&self, folder: usize, name: &OsStr) -> Option<usize> {
        match &self.nodes[folder] {
            Node::Folder { children, .. } => children.get(name).copied(),
            _ => None,
        }
    }

    /// The node at `relative` (plain components), not followed.
    fn lookup(&self, relative: &Path) -> Option<usize> {
        let mut at = TOP;
        for part in relative {
            at = self.child(at, part)?;
        }
        Some(at)
    }

    /// Files and links under the folder `relative` (not followed), relative to it, in
    /// name order; nothing when it is not a folder.
    pub fn files_below(&self, relative: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let Some(start) = self.lookup(relative) else {
            return found;
        };
        let mut pending = vec![(PathBuf::new(), start)];
        while let Some((path, folder)) = pending.pop() {
            let Node::Folder { children, .. } = &self.nodes[folder] else {
                continue;
            };
            for (name, &node) in children.iter().rev() {
                match self.nodes[node] {
                    Node::Folder { .. } => pending.push((path.join(name), node)),
                    _ => found.push(path.join(name)),
                }
            }
        }
        found.sort();
        found
    }

    /// Adds the link `link -> target` that will be made later, with the folders on its
    /// way; `false`, and nothing added, when something is already there (or a file is on
    /// the way), where making it would fail or be skipped too.
    pub fn plan_link(&mut self, link: &Path, target: &Path) -> bool {
        let parts: Vec<&OsStr> = link
            .components()
            .filter_map(|c| match c {
                Component::Normal(part) => Some(part),
                _ => None,
            })
            .collect();
        let Some((leaf, folders)) = parts.split_last() else {
            return false;
        };
        let mut at = TOP;
        for part in folders {
            at = match self.child(at, part) {
                Some(node) if matches!(self.nodes[node], Node::Folder { .. }) => node,
                Some(_) => return false,
                None => {
                    let node = self.add_folder(at);
                    self.children_mut(at).insert((*part).to_owned(), node);
                    node
                }
            };
        }
        if self.child(at, leaf).is_some() {
            return false;
        }
        let node = self.add(Node::Link {
            parent: at,
            target: target.to_owned(),
        });
        self.children_mut(at).insert((*leaf).to_owned(), node);
        let path: PathBuf = parts.iter().collect();
        let position = self.links.partition_point(|(p, _)| *p < path);
        self.links.insert(position, (path, node));
        true
    }

    /// The first link (in path order) whose resolution, following the links it meets
    /// inside the tree, leaves `scope` or loops.
    pub fn escaping_link(&self, scope: Scope) -> Option<EscapingLink> {
        let mut resolver = Resolver {
            tree: self,
            scope,
            resolved: vec![Resolved::Pending; self.nodes.len()],
        };
        for (path, node) in &self.links {
            let (outcome, _) = resolver.resolve(*node, 0);
            let leaves = match outcome {
                // Side by side, the top folder itself is no place inside.
                Outcome::At(place) => scope == Scope::SideBySide && self.depth_of(place) == 0,
                Outcome::Leaves | Outcome::Loops => true,
            };
            if leaves {
                let Node::Link { target, .. } = &self.nodes[*node] else {
                    unreachable!("links are links")
                };
                return Some(EscapingLink {
                    link: path.clone(),
                    target: target.clone(),
                    loops: outcome == Outcome::Loops,
                });
            }
        }
        None
    }

    fn depth_of(&self, place: Place) -> usize {
        match place {
            Place::Folder(node) => self.depth[node],
            Place::Lexical(depth) => depth,
        }
    }

    fn parent_of(&self, folder: usize) -> Option<usize> {
        match self.nodes[folder] {
            Node::Folder { parent, .. } => parent,
            _ => None,
        }
    }

    /// Whether `name` is one of the trees side by side at the top.
    fn is_member(&self, name: &OsStr) -> bool {
        self.child(TOP, name)
            .is_some_and(|node| matches!(self.nodes[node], Node::Folder { .. }))
    }
}

struct Resolver<'a> {
    tree: &'a LinkTree,
    scope: Scope,
    resolved: Vec<Resolved>,
}

impl Resolver<'_> {
    /// Where the link `node` leads from its folder, and how many links that followed;
    /// `nesting` is how many links are being followed around this one.
    fn resolve(&mut self, node: usize, nesting: usize) -> (Outcome, usize) {
        match self.resolved[node] {
            Resolved::Done(outcome, hops) => return (outcome, hops),
            // Its own resolution passes through it: the kernel would loop.
            Resolved::InProgress => return (Outcome::Loops, 0),
            Resolved::Pending => {}
        }
        // Each nesting is a link followed: past the bound, the outermost loops anyway.
        if nesting > MAX_LINK_HOPS {
            return (Outcome::Loops, 0);
        }
        let Node::Link { parent, target } = &self.tree.nodes[node] else {
            unreachable!("only links are resolved")
        };
        self.resolved[node] = Resolved::InProgress;
        let result = self.follow(Place::Folder(*parent), target, nesting);
        self.resolved[node] = Resolved::Done(result.0, result.1);
        result
    }

    /// Walks `target` from `place`.
    fn follow(&mut self, mut place: Place, target: &Path, nesting: usize) -> (Outcome, usize) {
        if target.has_root() {
            return (Outcome::Leaves, 0);
        }
        let tree = self.tree;
        let mut hops = 0;
        for part in target {
            if part == "." {
                continue;
            }
            if part == ".." {
                place = match place {
                    Place::Folder(folder) => match tree.parent_of(folder) {
                        Some(parent) => Place::Folder(parent),
                        None => return (Outcome::Leaves, hops),
                    },
                    Place::Lexical(0) => return (Outcome::Leaves, hops),
                    Place::Lexical(depth) => Place::Lexical(depth - 1),
                };
                continue;
            }
            if self.scope == Scope::SideBySide && tree.depth_of(place) == 0 && !tree.is_member(part)
            {
                return (Outcome::Leaves, hops);
            }
            place = match place {
                Place::Lexical(depth) => Place::Lexical(depth + 1),
                Place::Folder(folder) => {
                    let below = tree.depth[folder] + 1;
                    match tree.child(folder, part) {
                        None => Place::Lexical(below),
                        Some(child) => match tree.nodes[child] {
                            Node::Folder { .. } => Place::Folder(child),
                            Node::Other => Place::Lexical(below),
                            Node::Link { .. } => {
                                let (outcome, inner) = self.resolve(child, nesting + 1);
                                hops += 1 + inner;
                                if hops > MAX_LINK_HOPS {
                                    return (Outcome::Loops, hops);
                                }
                                match outcome {
                                    Outcome::At(next) => next,
                                    stop => return (stop, hops),
                                }
                            }
                        },
                    }
                }
            };
        }
        (Outcome::At(place), hops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree_of(links: &[(&str, &str)], folders: &[&str]) -> (tempfile::TempDir, LinkTree) {
        let temp = tempfile::tempdir().expect("temp");
        for folder in folders {
            std::fs::create_dir_all(temp.path().join(folder)).expect("mkdir");
        }
        for (link, target) in links {
            let path = temp.path().join(link);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            symlink(target, path).expect("link");
        }
        let tree = LinkTree::read(&Dir::open(temp.path()).expect("open")).expect("read");
        (temp, tree)
    }

    #[test]
    fn deep_links_cost_the_tree_once_not_every_folder_per_component() {
        // 250 folders deep, 100 links each climbing 125 and descending 100 again: opened
        // folder by folder from the top per component, this took tens of seconds.
        let depth = 250;
        let base = vec!["d"; depth].join("/");
        let target = format!("{}{}", "../".repeat(125), vec!["d"; 100].join("/"));
        let links: Vec<(String, String)> = (0..100)
            .map(|i| (format!("{base}/l{i}"), target.clone()))
            .collect();
        let links: Vec<(&str, &str)> = links.iter().map(|(l, t)| (&**l, &**t)).collect();
        let (temp, _) = tree_of(&links, &[&base]);
        let started = std::time::Instant::now();
        let dir = Dir::open(temp.path()).expect("open");
        assert_eq!(dir.escaping_link().expect("read"), None);
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn links_met_on_the_way_are_resolved_once_and_still_counted() {
        // A chain of 39 links to links is followed; 41 loop, as the kernel says.
        let chain = |length: usize| -> Vec<(String, String)> {
            (0..length)
                .map(|i| (format!("l{i}"), format!("l{}", i + 1)))
                .chain([(format!("l{length}"), "end".to_owned())])
                .collect()
        };
        for (length, loops) in [(40, false), (41, true)] {
            let links = chain(length);
            let links: Vec<(&str, &str)> = links.iter().map(|(l, t)| (&**l, &**t)).collect();
            let (_temp, tree) = tree_of(&links, &[]);
            let found = tree.escaping_link(Scope::Folder);
            assert_eq!(found.map(|e| e.loops), loops.then_some(true), "{length}");
        }
        // `y -> .` passed three times is three links, then `..` leaves.
        let (_temp, tree) = tree_of(&[("y", "."), ("lib/x", "../y/y/y/../outside")], &[]);
        let escape = tree.escaping_link(Scope::Folder).expect("leaves");
        assert_eq!((escape.link, escape.loops), (PathBuf::from("lib/x"), false));
    }

    #[test]
    fn side_by_side_trees_may_be_entered_from_each_other_only() {
        let outputs = ["out", "lib"];
        // `out/x` -> the lib output's file, as `out`'s links are written.
        let (_temp, tree) = tree_of(&[("out/lib/x", "../../lib/lib/x")], &outputs);
        assert_eq!(tree.escaping_link(Scope::SideBySide), None);
        // Rising to the folder holding the outputs and naming anything else, or
        // stopping there, is outside: in a store that is the store folder.
        for target in ["../../elsewhere/x", "../..", "../../../x", "/abs"] {
            let (_temp, tree) = tree_of(&[("out/lib/x", target)], &outputs);
            let escape = tree.escaping_link(Scope::SideBySide).expect(target);
            assert_eq!(escape.link, Path::new("out/lib/x"), "{target}");
        }
    }

    #[test]
    fn planned_links_are_resolved_as_if_made() {
        // `lib/lib/a` climbs to the lib output's top; `out/w` passes through the link
        // `out` will get to it, then climbs once more: out of the outputs.
        let (_temp, mut tree) = tree_of(&[("lib/lib/a", "..")], &["out", "lib"]);
        assert_eq!(tree.escaping_link(Scope::SideBySide), None);
        assert!(tree.plan_link(Path::new("out/w"), Path::new("lib/a/..")));
        assert_eq!(tree.escaping_link(Scope::SideBySide), None);
        assert!(tree.plan_link(Path::new("out/lib/a"), Path::new("../../lib/lib/a")));
        let escape = tree.escaping_link(Scope::SideBySide).expect("leaves");
        assert_eq!(escape.link, Path::new("out/w"));
        // Nothing is planned over an entry, or below a link.
        assert!(!tree.plan_link(Path::new("lib/lib/a"), Path::new("x")));
        assert!(!tree.plan_link(Path::new("lib/lib/a/b"), Path::new("x")));
        assert_eq!(
            tree.files_below(Path::new("out")),
            [PathBuf::from("lib/a"), PathBuf::from("w")]
        );
    }
}
