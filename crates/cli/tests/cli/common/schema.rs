//! Checks a document against the JSON Schema `cudapkgs schema NAME` prints: the subset
//! of JSON Schema that schemars writes, strictly (a key the schema does not name is a
//! problem, as the schemas promise every key).

use serde_json::{Map, Value};

use super::run;

/// The schema of the document `name`, as the binary prints it.
pub(crate) fn schema(name: &str) -> Value {
    let (code, stdout, stderr) = run(&["schema", name]);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("a schema is JSON")
}

/// Fails the test unless `document` (one JSON document) fits the schema of `name`.
#[track_caller]
pub(crate) fn assert_fits(name: &str, document: &str) {
    let schema = schema(name);
    let value: Value = serde_json::from_str(document)
        .unwrap_or_else(|error| panic!("{name}: not one JSON document ({error}): {document}"));
    let found = problems_of(&value, &schema);
    assert!(found.is_empty(), "{name}: {found:#?}\n{value:#}");
}

/// Every problem of `value` against the root schema `schema`.
pub(crate) fn problems_of(value: &Value, schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    problems(value, schema, schema, "doc", &mut found);
    found
}

/// `schema` with its `$ref` into `$defs` followed: the keywords beside a `$ref` (a
/// description) over the schema it names.
fn resolved(schema: &Value, root: &Value) -> Value {
    let Some(reference) = schema["$ref"].as_str() else {
        return schema.clone();
    };
    let name = reference.strip_prefix("#/$defs/").expect("a local $ref");
    let target = &root["$defs"][name];
    assert!(target.is_object(), "$ref to a missing definition {name}");
    let mut merged = resolved(target, root);
    if let (Value::Object(merged), Value::Object(beside)) = (&mut merged, schema) {
        for (key, value) in beside {
            if key != "$ref" {
                merged.insert(key.clone(), value.clone());
            }
        }
    }
    merged
}

/// `branch` (a `oneOf` or `anyOf` choice) joined with the schema around it: their
/// properties and required keys together, the branch's other keywords over the rest.
fn joined(around: &Map<String, Value>, branch: &Value) -> Value {
    let mut out = around.clone();
    let Value::Object(branch) = branch else {
        return Value::Object(out);
    };
    for (key, value) in branch {
        match (key.as_str(), out.get_mut(key), value) {
            ("properties", Some(Value::Object(mine)), Value::Object(theirs)) => {
                mine.extend(theirs.clone());
            }
            ("required", Some(Value::Array(mine)), Value::Array(theirs)) => {
                mine.extend(theirs.iter().cloned());
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every problem of `value` against `schema` (`type`, `const`, `enum`, `minimum`,
/// `maximum`, `properties`, `required`, `additionalProperties`, `items`, `prefixItems`,
/// `minItems`, `maxItems`, `oneOf`, `anyOf`, `$ref` into `$defs`).
fn problems(value: &Value, schema: &Value, root: &Value, at: &str, found: &mut Vec<String>) {
    let schema = resolved(schema, root);
    if let Value::Object(keywords) = &schema {
        for combinator in ["oneOf", "anyOf"] {
            let Some(Value::Array(branches)) = keywords.get(combinator) else {
                continue;
            };
            let mut around = keywords.clone();
            around.remove(combinator);
            let fitting = branches
                .iter()
                .filter(|branch| {
                    let mut theirs = Vec::new();
                    let branch = joined(&around, &resolved(branch, root));
                    problems(value, &branch, root, at, &mut theirs);
                    theirs.is_empty()
                })
                .count();
            let fits = if combinator == "oneOf" {
                fitting == 1
            } else {
                fitting >= 1
            };
            if !fits {
                found.push(format!(
                    "{at}: fits {fitting} of the {} `{combinator}` choices",
                    branches.len()
                ));
            }
            return;
        }
    }
    let kind = kind_of(value);
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let fits = allowed.is_empty()
        || allowed.contains(&kind)
        || (kind == "integer" && allowed.contains(&"number"));
    if !fits {
        found.push(format!("{at}: {kind}, not {allowed:?}"));
        return;
    }
    if let Some(constant) = schema.get("const") {
        if value != constant {
            found.push(format!("{at}: {value}, not {constant}"));
        }
    }
    if let Some(Value::Array(choices)) = schema.get("enum") {
        if !choices.contains(value) {
            found.push(format!("{at}: {value}, none of {choices:?}"));
        }
    }
    if let Some(number) = value.as_f64() {
        if let Some(minimum) = schema["minimum"].as_f64().filter(|m| number < *m) {
            found.push(format!("{at}: {number} < {minimum}"));
        }
        if let Some(maximum) = schema["maximum"].as_f64().filter(|m| number > *m) {
            found.push(format!("{at}: {number} > {maximum}"));
        }
    }
    match value {
        Value::Array(items) => array_problems(items, &schema, root, at, found),
        Value::Object(object) => object_problems(object, &schema, root, at, found),
        _ => {}
    }
}

fn array_problems(
    items: &[Value],
    schema: &Value,
    root: &Value,
    at: &str,
    found: &mut Vec<String>,
) {
    let length = items.len() as u64;
    if let Some(least) = schema["minItems"].as_u64().filter(|least| length < *least) {
        found.push(format!("{at}: {length} items, fewer than {least}"));
    }
    if let Some(most) = schema["maxItems"].as_u64().filter(|most| length > *most) {
        found.push(format!("{at}: {length} items, more than {most}"));
    }
    let leading = schema["prefixItems"].as_array();
    for (index, item) in items.iter().enumerate() {
        let item_schema = leading
            .and_then(|leading| leading.get(index))
            .unwrap_or(&schema["items"]);
        if item_schema.is_null() {
            continue;
        }
        problems(item, item_schema, root, &format!("{at}[{index}]"), found);
    }
}

fn object_problems(
    object: &Map<String, Value>,
    schema: &Value,
    root: &Value,
    at: &str,
    found: &mut Vec<String>,
) {
    for required in schema["required"].as_array().into_iter().flatten() {
        let key = required.as_str().expect("a key");
        if !object.contains_key(key) {
            found.push(format!("{at}: no `{key}`"));
        }
    }
    let properties = schema["properties"].as_object();
    for (key, item) in object {
        let place = format!("{at}.{key}");
        match (
            properties.and_then(|p| p.get(key)),
            &schema["additionalProperties"],
        ) {
            (Some(property), _) => problems(item, property, root, &place, found),
            (None, other @ Value::Object(_)) => problems(item, other, root, &place, found),
            (None, Value::Bool(true)) => {}
            (None, _) => found.push(format!("{at}: `{key}` is not in the schema")),
        }
    }
}
