//! Dependency specifiers as wheels declare them (`Requires-Dist`, PEP 508): a project
//! name, extras, version specifiers (PEP 440, through `pep440_rs`) and an environment
//! marker, evaluated for the system the packages are built for.
//!
//! Only the name form is read: a requirement by URL (`name @ https://…`) is refused,
//! since a wheel from anywhere but the index could not be verified by it.

use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};

use crate::pypi::normalize;

/// One `Requires-Dist` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Normalised (PEP 503).
    pub name: String,
    pub extras: Vec<String>,
    pub specifiers: VersionSpecifiers,
    pub marker: Option<Marker>,
}

/// An environment marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    And(Box<Marker>, Box<Marker>),
    Or(Box<Marker>, Box<Marker>),
    Compare(Value, Op, Value),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Variable(String),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    Compatible,
    Arbitrary,
    In,
    NotIn,
}

/// The marker variables PEP 508 defines.
const VARIABLES: &[&str] = &[
    "python_version",
    "python_full_version",
    "os_name",
    "sys_platform",
    "platform_release",
    "platform_system",
    "platform_version",
    "platform_machine",
    "platform_python_implementation",
    "implementation_name",
    "implementation_version",
    "extra",
];

/// What markers are evaluated against. A variable without a value (this builder
/// installs into no Python, so it knows no `python_version`) makes its comparison false.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    pub values: Vec<(&'static str, String)>,
    /// The extras asked for (normalised); `extra == "x"` holds for each of them.
    pub extras: Vec<String>,
}

impl Environment {
    /// Linux on NVIDIA's system name (`linux-x86_64`, `linux-sbsa`, `linux-aarch64`).
    pub fn linux(system: &str) -> Environment {
        let machine = if system.ends_with("x86_64") {
            "x86_64"
        } else {
            "aarch64"
        };
        Environment {
            values: vec![
                ("os_name", "posix".to_owned()),
                ("sys_platform", "linux".to_owned()),
                ("platform_system", "Linux".to_owned()),
                ("platform_machine", machine.to_owned()),
            ],
            extras: Vec::new(),
        }
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A requirement that could not be read; `at` is the byte offset of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}`: at byte {at}: {problem}")]
pub struct ParseError {
    pub text: String,
    pub at: usize,
    pub problem: String,
}

impl Requirement {
    /// Whether it applies in `environment` (no marker: always).
    pub fn applies(&self, environment: &Environment) -> bool {
        self.marker
            .as_ref()
            .is_none_or(|marker| marker.holds(environment))
    }
}

impl FromStr for Requirement {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Requirement, ParseError> {
        let mut parser = Parser {
            text,
            at: 0,
            depth: 0,
            terms: 0,
        };
        let requirement = parser.requirement()?;
        parser.skip_space();
        if parser.at < text.len() {
            return Err(parser.error("unexpected text after the requirement"));
        }
        Ok(requirement)
    }
}

impl Marker {
    pub fn holds(&self, environment: &Environment) -> bool {
        match self {
            Marker::And(a, b) => a.holds(environment) && b.holds(environment),
            Marker::Or(a, b) => a.holds(environment) || b.holds(environment),
            Marker::Compare(left, op, right) => compare(left, *op, right, environment),
        }
    }
}

fn compare(left: &Value, op: Op, right: &Value, environment: &Environment) -> bool {
    let extra = [left, right]
        .iter()
        .any(|v| matches!(v, Value::Variable(name) if name == "extra"));
    if extra {
        // `extra == "name"` (either way round) holds for each extra asked for.
        let text = match (left, right) {
            (Value::Text(t), _) | (_, Value::Text(t)) => normalize(t),
            _ => return false,
        };
        let asked = environment.extras.contains(&text);
        return match op {
            Op::Equal => asked,
            Op::NotEqual => !asked,
            _ => false,
        };
    }
    let resolve = |value: &Value| -> Option<String> {
        match value {
            Value::Text(text) => Some(text.clone()),
            Value::Variable(name) => environment.value(name).map(str::to_owned),
        }
    };
    let (Some(left), Some(right)) = (resolve(left), resolve(right)) else {
        return false;
    };
    match op {
        Op::In => right.contains(&left),
        Op::NotIn => !right.contains(&left),
        Op::Arbitrary => left == right,
        _ => match (Version::from_str(&left), version_specifiers(op, &right)) {
            (Ok(version), Some(specifiers)) => specifiers.contains(&version),
            _ => match op {
                Op::Equal => left == right,
                Op::NotEqual => left != right,
                _ => false,
            },
        },
    }
}

fn version_specifiers(op: Op, version: &str) -> Option<VersionSpecifiers> {
    let op = match op {
        Op::Equal => "==",
        Op::NotEqual => "!=",
        Op::Less => "<",
        Op::LessEqual => "<=",
        Op::Greater => ">",
        Op::GreaterEqual => ">=",
        Op::Compatible => "~=",
        _ => return None,
    };
    VersionSpecifiers::from_str(&format!("{op}{version}")).ok()
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
    /// Parentheses open around the marker being read.
    depth: usize,
    /// Comparisons read so far.
    terms: usize,
}

/// Markers are read and evaluated by recursion: bounded, so that no metadata file can
/// exhaust the stack (real ones nest two or three deep and hold a handful of terms).
const MAX_MARKER_DEPTH: usize = 32;
const MAX_MARKER_TERMS: usize = 256;

impl<'a> Parser<'a> {
    fn error(&self, problem: &str) -> ParseError {
        ParseError {
            text: self.text.to_owned(),
            at: self.at,
            problem: problem.to_owned(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start_matches([' ', '\t']).len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    /// A keyword (`and`, `or`, `in`, `not`) followed by something that cannot continue it.
    fn eat_word(&mut self, word: &str) -> bool {
        self.skip_space();
        let rest = self.rest();
        let ends = rest.get(word.len()..).is_some_and(|after| {
            !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        });
        if rest.starts_with(word) && ends {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    /// Letters, digits and `-_.`, starting and ending with a letter or digit.
    fn identifier(&mut self, what: &str) -> Result<String, ParseError> {
        self.skip_space();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(rest.len());
        let word = &rest[..len];
        if word.is_empty()
            || !word.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !word.ends_with(|c: char| c.is_ascii_alphanumeric())
        {
            return Err(self.error(&format!("expected {what}")));
        }
        self.at += len;
        Ok(word.to_owned())
    }

    fn requirement(&mut self) -> Result<Requirement, ParseError> {
        let name = normalize(&self.identifier("a project name")?);
        let mut extras = Vec::new();
        if self.eat("[") && !self.eat("]") {
            loop {
                extras.push(normalize(&self.identifier("an extra's name")?));
                if self.eat("]") {
                    break;
                }
                if !self.eat(",") {
                    return Err(self.error("expected `,` or `]` in the extras"));
                }
            }
        }
        self.skip_space();
        if self.rest().starts_with('@') {
            return Err(self.error(
                "a requirement by URL cannot be verified through the index; only names are followed",
            ));
        }
        let specifiers = if self.eat("(") {
            let specifiers = self.specifiers(&[')'])?;
            if !self.eat(")") {
                return Err(self.error("expected `)` after the version specifiers"));
            }
            specifiers
        } else {
            self.specifiers(&[';'])?
        };
        let marker = if self.eat(";") {
            Some(self.or()?)
        } else {
            None
        };
        Ok(Requirement {
            name,
            extras,
            specifiers,
            marker,
        })
    }

    fn specifiers(&mut self, ends: &[char]) -> Result<VersionSpecifiers, ParseError> {
        self.skip_space();
        let rest = self.rest();
        let len = rest.find(|c: char| ends.contains(&c)).unwrap_or(rest.len());
        let text = rest[..len].trim();
        let start = self.at;
        self.at += len;
        if text.is_empty() {
            return Ok(VersionSpecifiers::empty());
        }
        VersionSpecifiers::from_str(text).map_err(|e| ParseError {
            text: self.text.to_owned(),
            at: start,
            problem: format!("not PEP 440 version specifiers: {e}"),
        })
    }

    fn or(&mut self) -> Result<Marker, ParseError> {
        let mut marker = self.and()?;
        while self.eat_word("or") {
            marker = Marker::Or(Box::new(marker), Box::new(self.and()?));
        }
        Ok(marker)
    }

    fn and(&mut self) -> Result<Marker, ParseError> {
        let mut marker = self.atom()?;
        while self.eat_word("and") {
            marker = Marker::And(Box::new(marker), Box::new(self.atom()?));
        }
        Ok(marker)
    }

    fn atom(&mut self) -> Result<Marker, ParseError> {
        if self.eat("(") {
            self.depth += 1;
            if self.depth > MAX_MARKER_DEPTH {
                return Err(
                    self.error(&format!("markers nested more than {MAX_MARKER_DEPTH} deep"))
                );
            }
            let marker = self.or()?;
            if !self.eat(")") {
                return Err(self.error("expected `)` in the marker"));
            }
            self.depth -= 1;
            return Ok(marker);
        }
        self.terms += 1;
        if self.terms > MAX_MARKER_TERMS {
            return Err(self.error(&format!(
                "a marker of more than {MAX_MARKER_TERMS} comparisons"
            )));
        }
        let left = self.value()?;
        let op = self.op()?;
        let right = self.value()?;
        Ok(Marker::Compare(left, op, right))
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        self.skip_space();
        let rest = self.rest();
        if let Some(quote) = rest.chars().next().filter(|c| matches!(c, '"' | '\'')) {
            let Some(len) = rest[1..].find(quote) else {
                return Err(self.error("a quoted string does not end"));
            };
            let text = rest[1..=len].to_owned();
            self.at += len + 2;
            return Ok(Value::Text(text));
        }
        let start = self.at;
        let name = self.identifier("a marker variable or a quoted string")?;
        if !VARIABLES.contains(&name.as_str()) {
            self.at = start;
            return Err(self.error(&format!("`{name}` is not a marker variable")));
        }
        Ok(Value::Variable(name))
    }

    fn op(&mut self) -> Result<Op, ParseError> {
        // Longest first: `===` before `==`, `<=` before `<`.
        const OPS: &[(&str, Op)] = &[
            ("===", Op::Arbitrary),
            ("==", Op::Equal),
            ("!=", Op::NotEqual),
            ("<=", Op::LessEqual),
            (">=", Op::GreaterEqual),
            ("~=", Op::Compatible),
            ("<", Op::Less),
            (">", Op::Greater),
        ];
        for (token, op) in OPS {
            if self.eat(token) {
                return Ok(*op);
            }
        }
        if self.eat_word("in") {
            return Ok(Op::In);
        }
        if self.eat_word("not") {
            if self.eat_word("in") {
                return Ok(Op::NotIn);
            }
            return Err(self.error("expected `in` after `not`"));
        }
        Err(self.error("expected a comparison (`==`, `!=`, `<`, `in`, …)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Requirement {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn nvidia_requirements_read_and_evaluate() {
        // From cuda-toolkit 13.0.2's METADATA on PyPI.
        let pin = parse(
            "nvidia-cublas==13.1.0.3.*; (sys_platform == 'linux' or sys_platform == 'win32') and extra == 'all'",
        );
        assert_eq!(pin.name, "nvidia-cublas");
        assert!(
            pin.specifiers
                .contains(&Version::from_str("13.1.0.3").expect("version"))
        );
        assert!(
            !pin.specifiers
                .contains(&Version::from_str("13.1.1.3").expect("version"))
        );
        let mut linux = Environment::linux("linux-x86_64");
        assert!(!pin.applies(&linux), "only with the extra");
        linux.extras.push("all".to_owned());
        assert!(pin.applies(&linux));
        let windows_only = parse(
            "nvidia-cudla==13.5.25.*; (sys_platform == 'linux' and platform_machine == 'aarch64') and extra == 'all'",
        );
        assert!(!windows_only.applies(&linux));
        assert!(windows_only.applies(&Environment {
            extras: vec!["all".to_owned()],
            ..Environment::linux("linux-sbsa")
        }));
        let range = parse("nvidia-nvjitlink<14,>=13.5.37; extra == 'cufft'");
        assert!(
            range
                .specifiers
                .contains(&Version::from_str("13.6").expect("version"))
        );
        let bare = parse("nvidia-cuda-nvrtc");
        assert!(bare.specifiers.is_empty() && bare.marker.is_none());
        assert!(bare.applies(&Environment::default()));
        let old = parse("Foo_Bar[Extra1, x] (>=1.0) ; python_version < \"3.8\"");
        assert_eq!(old.name, "foo-bar");
        assert_eq!(old.extras, ["extra1", "x"]);
        assert!(!old.applies(&linux), "no Python version is known");
    }

    #[test]
    fn bad_requirements_name_the_offset() {
        for (text, at) in [
            ("nvidia-x @ https://example/x.whl", 9),
            ("nvidia-x; os_name", 17),
            ("nvidia-x; bogus == 'a'", 10),
            ("nvidia-x; os_name == 'a", 21),
            ("nvidia-x>=1.0 )", 8),
            ("-x", 0),
            ("x; (os_name == 'a'", 18),
        ] {
            let error = text.parse::<Requirement>().expect_err(text);
            assert_eq!(error.at, at, "{text}: {error}");
        }
    }

    #[test]
    fn markers_that_would_exhaust_the_stack_are_refused() {
        // Found by the requirement fuzz target: deep parentheses overflowed the stack.
        let deep = format!(
            "x; {}os_name == 'a'{}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        let error = deep.parse::<Requirement>().expect_err("too deep");
        assert!(
            error.problem.contains("nested more than 32 deep"),
            "{error}"
        );
        let long = format!("x; {}", vec!["os_name == 'a'"; 100_000].join(" and "));
        let error = long.parse::<Requirement>().expect_err("too long");
        assert!(
            error.problem.contains("more than 256 comparisons"),
            "{error}"
        );
        let fine = format!("x; {}os_name == 'posix'{}", "(".repeat(32), ")".repeat(32));
        assert!(parse(&fine).applies(&Environment::linux("linux-x86_64")));
    }
}
