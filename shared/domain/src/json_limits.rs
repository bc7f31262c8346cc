//! Limits on free-form JSON that is stored (an agent's output): what DynamoDB can hold
//! and what keeps one item under its 400 KB.
//!
//! A JSON text's length is not a bound on its stored size: `[1,1,1,…]` takes 2 bytes an
//! element as JSON and 3 in DynamoDB (a number plus the list element's byte). So the
//! stored size is computed by DynamoDB's own rules and limited as such, beside the
//! nesting depth (DynamoDB stops at 32 levels), the range of numbers it accepts and
//! its refusal of empty map keys.

use serde_json::Value;

use crate::FieldError;

/// DynamoDB's deepest nesting of lists and maps.
pub const MAX_DEPTH: usize = 32;
/// DynamoDB numbers: magnitude below 1e126 (and at least 1e-130 unless zero).
pub const MAX_NUMBER_MAGNITUDE: f64 = 1e125;
pub const MIN_NUMBER_MAGNITUDE: f64 = 1e-129;

/// The size DynamoDB counts for `value` stored as an attribute value (without the
/// attribute's name): strings by UTF-8 length, numbers by significant digits, one
/// byte for null and booleans, 3 bytes for a list or map plus a byte per element
/// and, for maps, each key's length.
pub fn stored_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 1,
        Value::String(s) => s.len(),
        Value::Number(n) => number_size(&n.to_string()),
        Value::Array(items) => 3 + items.iter().map(|v| 1 + stored_size(v)).sum::<usize>(),
        Value::Object(map) => {
            3 + map
                .iter()
                .map(|(k, v)| k.len() + 1 + stored_size(v))
                .sum::<usize>()
        }
    }
}

/// DynamoDB's size of a number: one byte per two significant digits, plus one.
fn number_size(text: &str) -> usize {
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let significant = digits
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len()
        .max(1);
    significant.div_ceil(2) + 1
}

/// Checks `value` against the stored-JSON limits, naming `field` in the errors.
pub fn check(errors: &mut Vec<FieldError>, field: &str, value: &Value, max_stored_bytes: usize) {
    if let Some(problem) = first_problem(value, 1) {
        errors.push(FieldError::new(field, problem));
        return;
    }
    let size = stored_size(value);
    if size > max_stored_bytes {
        errors.push(FieldError::new(
            field,
            format!("is {size} bytes stored; at most {max_stored_bytes}"),
        ));
    }
}

fn first_problem(value: &Value, depth: usize) -> Option<String> {
    match value {
        Value::Array(_) | Value::Object(_) if depth > MAX_DEPTH => {
            Some(format!("nests deeper than {MAX_DEPTH} levels"))
        }
        Value::Array(items) => items.iter().find_map(|v| first_problem(v, depth + 1)),
        // DynamoDB refuses an empty attribute name, nested map keys included.
        Value::Object(map) if map.contains_key("") => Some("has an empty key".to_owned()),
        Value::Object(map) => map.values().find_map(|v| first_problem(v, depth + 1)),
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::INFINITY).abs();
            let out_of_range = !x.is_finite()
                || x >= MAX_NUMBER_MAGNITUDE
                || (x != 0.0 && x < MIN_NUMBER_MAGNITUDE);
            out_of_range.then(|| {
                format!("holds a number outside ±{MAX_NUMBER_MAGNITUDE:e} (or too close to 0)")
            })
        }
        Value::Null | Value::Bool(_) | Value::String(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn problems(value: &Value, max: usize) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check(&mut errors, "output", value, max);
        errors
    }

    #[test]
    fn counts_as_dynamodb_does() {
        assert_eq!(stored_size(&json!("héllo")), 6);
        assert_eq!(stored_size(&json!(null)), 1);
        assert_eq!(stored_size(&json!(1)), 2);
        assert_eq!(stored_size(&json!(12345)), 4);
        assert_eq!(stored_size(&json!(1000)), 2);
        assert_eq!(stored_size(&json!([])), 3);
        assert_eq!(stored_size(&json!([1, 2])), 3 + 3 + 3);
        assert_eq!(stored_size(&json!({"ab": "xyz"})), 3 + 2 + 1 + 3);
    }

    #[test]
    fn a_list_of_small_numbers_is_bigger_stored_than_as_json() {
        let list = Value::Array(vec![json!(1); 1000]);
        let json_len = serde_json::to_vec(&list).unwrap().len();
        assert!(
            stored_size(&list) > json_len,
            "{} vs {json_len}",
            stored_size(&list)
        );
    }

    #[test]
    fn refuses_depth_past_dynamodb_and_numbers_it_cannot_hold() {
        let mut deep = json!("leaf");
        for _ in 0..MAX_DEPTH {
            deep = json!([deep]);
        }
        assert!(problems(&deep, 1_000_000).is_empty(), "32 levels are fine");
        let deeper = json!([deep]);
        assert!(problems(&deeper, 1_000_000)[0].message.contains("deeper"));
        assert!(!problems(&json!({"x": 1e200}), 1_000).is_empty());
        assert!(!problems(&json!([1e-200]), 1_000).is_empty());
        assert!(problems(&json!({"x": 1e124, "y": 0, "z": -3.5}), 1_000).is_empty());
    }

    #[test]
    fn refuses_empty_keys_at_any_depth() {
        assert!(
            problems(&json!({"": 1}), 1_000)[0]
                .message
                .contains("empty key")
        );
        assert!(!problems(&json!({"a": [{"b": {"": "v"}}]}), 1_000).is_empty());
        assert!(problems(&json!({" ": 1}), 1_000).is_empty());
    }

    #[test]
    fn refuses_what_is_too_big_stored() {
        let list = Value::Array(vec![json!(7); 1000]);
        assert!(problems(&list, 3_003).is_empty());
        assert!(!problems(&list, 3_002).is_empty());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            (-1e10f64..1e10).prop_map(|f| json!(f)),
            ".{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,6}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Sizes add up as DynamoDB's do: a list is its 3 bytes plus each element and
        /// its byte, so the size of a whole output is the sum of its parts.
        #[test]
        fn stored_size_is_positive_and_additive(a in json_value(), b in json_value()) {
            let pair = Value::Array(vec![a.clone(), b.clone()]);
            prop_assert_eq!(stored_size(&pair), 3 + 1 + stored_size(&a) + 1 + stored_size(&b));
        }
    }
}
