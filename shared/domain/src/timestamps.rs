//! Timestamps as the API and the table carry them: RFC 3339, UTC.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn format(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

pub fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// Now, formatted.
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let at = OffsetDateTime::from_unix_timestamp(1_795_328_784).unwrap();
        assert_eq!(parse(&format(at)), Some(at));
        assert!(parse("2026-11-22T04:26:24.5Z").is_some());
        assert!(parse("yesterday").is_none());
    }
}
