//! Owners: the humans behind agents. They sign up with an email and a password and
//! act through session tokens.

use serde::{Deserialize, Serialize};

use crate::FieldError;
use crate::ids::OwnerId;
use crate::validate::{Validate, check_length};

pub const MIN_PASSWORD_CHARS: usize = 8;
/// argon2 hashes any length, but an unbounded input is a denial-of-service lever.
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_NAME_CHARS: usize = 100;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerStatus {
    Active,
    Suspended,
}

/// An owner account as the API shows it (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    pub id: OwnerId,
    pub name: String,
    pub email: String,
    pub status: OwnerStatus,
    pub created_at: String,
}

/// Emails compare case-insensitively and without surrounding spaces.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A deliberately plain check: one `@`, something before it, a dotted domain after
/// it, no spaces. Deliverability is the mail system's business.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

fn check_email(errors: &mut Vec<FieldError>, email: &str) {
    let normalized = normalize_email(email);
    if normalized.is_empty() {
        errors.push(FieldError::new("email", "must not be empty"));
    } else if normalized.chars().count() > MAX_EMAIL_CHARS {
        errors.push(FieldError::new(
            "email",
            format!("must be at most {MAX_EMAIL_CHARS} characters"),
        ));
    } else if !is_valid_email(&normalized) {
        errors.push(FieldError::new("email", "must be an email address"));
    }
}

/// `POST /auth/sign-up`
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 100, example = "Riley Chen")
    )]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(format = Email, min_length = 5, max_length = 254, example = "riley@example.com"))]
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 128))]
    pub password: String,
}

impl Validate for SignUp {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_length(errors, "name", self.name.trim(), 1, MAX_NAME_CHARS);
        check_email(errors, &self.email);
        check_length(
            errors,
            "password",
            &self.password,
            MIN_PASSWORD_CHARS,
            MAX_PASSWORD_CHARS,
        );
    }
}

/// `POST /auth/sign-in`. Only shape and size are checked: whether the password is
/// right is the only thing a caller learns.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 254, example = "riley@example.com")
    )]
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub password: String,
}

impl Validate for SignIn {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_length(errors, "email", self.email.trim(), 1, MAX_EMAIL_CHARS);
        check_length(errors, "password", &self.password, 1, MAX_PASSWORD_CHARS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(v: &impl Validate) -> Vec<String> {
        let mut errors = Vec::new();
        v.validate(&mut errors);
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalize_email("  Riley@Example.COM "), "riley@example.com");
        assert!(is_valid_email("riley@example.com"));
        for bad in [
            "riley",
            "@example.com",
            "riley@",
            "riley@example",
            "a@b@c.d",
            "a b@c.d",
            "a@.com",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn sign_up_names_every_bad_field() {
        let bad = SignUp {
            name: " ".into(),
            email: "nope".into(),
            password: "short".into(),
        };
        assert_eq!(errors_of(&bad), ["name", "email", "password"]);
        let good = SignUp {
            name: "Riley".into(),
            email: "Riley@Example.com".into(),
            password: "long enough".into(),
        };
        assert!(errors_of(&good).is_empty());
        let huge = SignUp {
            password: "x".repeat(MAX_PASSWORD_CHARS + 1),
            ..good
        };
        assert_eq!(errors_of(&huge), ["password"]);
    }
}
