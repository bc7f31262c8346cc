//! The OpenAPI document (`aicity_openapi`, served at `GET /api/v1/openapi.json`) and the
//! template's routes (the runner's own route table, as API Gateway's) name the same
//! operations: a route nobody documented, or an operation no route serves, fails here
//! by name. And every operation is complete enough for clients and for schemathesis: a
//! unique operationId, a summary, a known tag, a success answer (but a retired route,
//! deprecated and answering 410 Gone), the 429 every route can answer, known security
//! schemes, and `$ref`s that resolve.
//!
//! Mapping: an `ANY` route is the five methods GET, POST, PUT, PATCH and DELETE; a
//! greedy `{proxy+}` segment is the parameter `{proxy}`. The catch-all `ANY /{proxy+}`
//! (unknown routes answer 404) is not an operation of the API.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Template routes that are not API operations, by route key.
const NOT_OPERATIONS: &[&str] = &["ANY /{proxy+}"];

/// What an `ANY` route stands for in the document.
const ANY_METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Methods an OpenAPI path item may hold.
const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

const SCHEMES: [&str; 3] = ["ownerSession", "agentApiKey", "trustApiKey"];

/// `METHOD /path` for every operation the template's routes serve.
fn template_operations() -> BTreeSet<String> {
    let mut operations = BTreeSet::new();
    for route in aicity_local::gateway::routes(&aicity_testkit::template()) {
        if NOT_OPERATIONS.contains(&route.route_key.as_str()) {
            continue;
        }
        let (method, path) = route
            .route_key
            .split_once(' ')
            .unwrap_or_else(|| panic!("route key {:?}", route.route_key));
        let path = path.replace("+}", "}");
        let methods: Vec<&str> = if method == "ANY" {
            ANY_METHODS.to_vec()
        } else {
            vec![method]
        };
        for method in methods {
            operations.insert(format!("{method} {path}"));
        }
    }
    operations
}

/// Every operation of the document: `METHOD /path` → the operation object.
fn document_operations(document: &Value) -> BTreeMap<String, Value> {
    let mut operations = BTreeMap::new();
    let paths = document["paths"].as_object().expect("paths is an object");
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for (method, operation) in item {
            if HTTP_METHODS.contains(&method.as_str()) {
                operations.insert(
                    format!("{} {path}", method.to_ascii_uppercase()),
                    operation.clone(),
                );
            }
        }
    }
    operations
}

#[test]
fn the_document_and_the_template_name_the_same_operations() {
    let routed = template_operations();
    let documented: BTreeSet<String> = document_operations(&aicity_openapi::document())
        .into_keys()
        .collect();
    let undocumented: Vec<&String> = routed.difference(&documented).collect();
    let unrouted: Vec<&String> = documented.difference(&routed).collect();
    let mut problems = Vec::new();
    if !undocumented.is_empty() {
        problems.push(format!(
            "{} routes of infra/template.yaml with no operation in the document (shared/openapi/src/districts):\n  {}",
            undocumented.len(),
            undocumented
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        ));
    }
    if !unrouted.is_empty() {
        problems.push(format!(
            "{} operations of the document that no route of infra/template.yaml serves:\n  {}",
            unrouted.len(),
            unrouted
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_operation_is_complete() {
    let document = aicity_openapi::document();
    let tags: BTreeSet<&str> = document["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].as_str().expect("a tag has a name"))
        .collect();
    let defined_schemes: BTreeSet<&str> = document["components"]["securitySchemes"]
        .as_object()
        .expect("securitySchemes")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        defined_schemes,
        SCHEMES.into_iter().collect(),
        "the document defines the three security schemes"
    );

    let mut problems = Vec::new();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for (operation_key, operation) in document_operations(&document) {
        let mut problem = |what: String| problems.push(format!("{operation_key}: {what}"));
        match operation["operationId"].as_str() {
            Some(id) if !id.is_empty() => {
                if let Some(first) = ids.insert(id.to_owned(), operation_key.clone()) {
                    problem(format!("operationId {id} is also {first}'s"));
                }
            }
            _ => problem("no operationId".into()),
        }
        if operation["summary"].as_str().is_none_or(str::is_empty) {
            problem("no summary".into());
        }
        match operation["tags"].as_array() {
            Some(list) if !list.is_empty() => {
                for tag in list {
                    if !tag.as_str().is_some_and(|t| tags.contains(t)) {
                        problem(format!("tag {tag} is not in the document's tags"));
                    }
                }
            }
            _ => problem("no tag".into()),
        }
        let responses = operation["responses"].as_object();
        let statuses: Vec<&str> = responses
            .map(|r| r.keys().map(String::as_str).collect())
            .unwrap_or_default();
        // A retired operation (deprecated, answering 410 Gone: the Exchange) has none.
        let retired = operation["deprecated"] == true && statuses.contains(&"410");
        if !retired && !statuses.iter().any(|s| s.starts_with('2')) {
            problem(format!("no 2xx response (has {statuses:?})"));
        }
        if !statuses.contains(&"429") {
            problem(format!("no 429 response (has {statuses:?})"));
        }
        if let Some(requirements) = operation.get("security") {
            match requirements.as_array() {
                Some(requirements) => {
                    for requirement in requirements {
                        let names: Vec<&String> = requirement
                            .as_object()
                            .map(|r| r.keys().collect())
                            .unwrap_or_default();
                        if names.is_empty() || names.iter().any(|n| !SCHEMES.contains(&n.as_str()))
                        {
                            problem(format!(
                                "security requirement {requirement} names none of {SCHEMES:?}"
                            ));
                        }
                    }
                }
                None => problem(format!("security {requirements} is not a list")),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Every `$ref` string under `value`, with where it is.
fn refs<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    if let Some(target) = child.as_str() {
                        out.push((at.clone(), target));
                        continue;
                    }
                }
                refs(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                refs(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_ref_resolves_to_a_component() {
    let document = aicity_openapi::document();
    let mut found = Vec::new();
    refs(&document, String::new(), &mut found);
    assert!(!found.is_empty(), "the document refers to its schemas");
    let unresolved: Vec<String> = found
        .into_iter()
        .filter(|(_, target)| {
            !(target.starts_with("#/components/") && document.pointer(&target[1..]).is_some())
        })
        .map(|(at, target)| format!("{at}: {target}"))
        .collect();
    assert!(
        unresolved.is_empty(),
        "{} $refs that resolve to no component:\n{}",
        unresolved.len(),
        unresolved.join("\n")
    );
}
