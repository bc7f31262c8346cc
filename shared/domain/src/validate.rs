//! Input validation that names every offending field at once.

use crate::FieldError;

/// A request body that checks its own values after it parsed.
pub trait Validate {
    /// Appends one [`FieldError`] per problem; an empty list means valid.
    fn validate(&self, errors: &mut Vec<FieldError>);
}

/// Characters, not bytes: limits are about what a user typed.
pub fn check_length(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) {
    let length = value.chars().count();
    if length < min {
        let message = if min == 1 {
            "must not be empty".to_owned()
        } else {
            format!("must be at least {min} characters")
        };
        errors.push(FieldError::new(field, message));
    } else if length > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
}

pub fn check_range(errors: &mut Vec<FieldError>, field: &str, value: i64, min: i64, max: i64) {
    if value < min || value > max {
        errors.push(FieldError::new(
            field,
            format!("must be between {min} and {max}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_counts_characters() {
        let mut errors = Vec::new();
        check_length(&mut errors, "name", "ééé", 1, 3);
        assert!(errors.is_empty());
        check_length(&mut errors, "name", "éééé", 1, 3);
        check_length(&mut errors, "other", "", 1, 3);
        assert_eq!(errors[0].field, "name");
        assert_eq!(errors[0].message, "must be at most 3 characters");
        assert_eq!(errors[1].message, "must not be empty");
    }

    #[test]
    fn range_is_inclusive() {
        let mut errors = Vec::new();
        check_range(&mut errors, "amount", 500, 500, 1_000_000);
        check_range(&mut errors, "amount", 1_000_000, 500, 1_000_000);
        assert!(errors.is_empty());
        check_range(&mut errors, "amount", 499, 500, 1_000_000);
        assert_eq!(errors.len(), 1);
    }
}
