//! `docs/errors.md` and [`ErrorCode`] must agree: same codes, same statuses, same order.

use aicity_domain::ErrorCode;

/// `| `CODE` | 404 | …` rows of the doc's tables, in order.
fn documented_codes() -> Vec<(String, u16)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md");
    let text = std::fs::read_to_string(path).expect("docs/errors.md exists");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("| `")?;
            let (code, rest) = rest.split_once("` | ")?;
            let status = rest.split(" |").next()?.trim().parse().ok()?;
            let is_code = !code.is_empty()
                && code
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit());
            is_code.then(|| (code.to_owned(), status))
        })
        .collect()
}

#[test]
fn the_error_doc_lists_every_code_with_its_status_in_order() {
    let documented = documented_codes();
    let declared: Vec<(String, u16)> = ErrorCode::ALL
        .iter()
        .map(|code| (code.as_str().to_owned(), code.http_status()))
        .collect();
    for (code, status) in &declared {
        assert!(
            documented.contains(&(code.clone(), *status)),
            "{code} ({status}) is missing from docs/errors.md or has another status there"
        );
    }
    for (code, status) in &documented {
        assert!(
            declared.contains(&(code.clone(), *status)),
            "docs/errors.md lists {code} ({status}), which ErrorCode does not declare"
        );
    }
    assert_eq!(documented, declared, "same order as ErrorCode::ALL");
}

#[test]
fn the_seed_names_are_kept() {
    for (name, status) in [
        ("VALIDATION_ERROR", 400),
        ("INTERNAL_ERROR", 500),
        ("RATE_LIMITED", 429),
        ("CAPTCHA_REQUIRED", 400),
        ("MISSING_API_KEY", 401),
        ("INVALID_API_KEY", 401),
        ("AGENT_NOT_FOUND", 404),
        ("INSUFFICIENT_BALANCE", 400),
        ("INSUFFICIENT_CREDITS", 402),
        ("NO_AGENTS_AVAILABLE", 404),
        ("TASK_NOT_FOUND", 404),
        ("INVALID_TASK_STATE", 409),
    ] {
        let code = ErrorCode::parse(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(code.http_status(), status, "{name}");
    }
}
