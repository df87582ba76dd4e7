//! What a request's query or body gives, read the same way on every page: a parameter counts only
//! with something in it, and a time is RFC 3339 or refused with a `bad_filter` that names it.

use super::error::{ConsoleError, ConsoleResult};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A parameter given with something in it (white space around it dropped).
pub fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The parameter `name`'s value `s` as a time.
pub fn time(name: &str, s: &str) -> ConsoleResult<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
        ConsoleError::bad_request(
            "bad_filter",
            format!("{name}={s:?} is not an RFC 3339 time like 2026-12-01T10:00:00Z"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_parameter_is_not_given() {
        assert_eq!(given(&None), None);
        assert_eq!(given(&Some("  ".into())), None);
        assert_eq!(
            given(&Some(" payment_failed ".into())),
            Some("payment_failed")
        );
    }

    #[test]
    fn a_time_is_rfc_3339_or_refused_by_name() {
        assert!(time("from", "2026-12-01T10:00:00Z").is_ok());
        let refused = time("to", "yesterday").unwrap_err().to_string();
        assert!(refused.contains("to=\"yesterday\""), "{refused}");
    }
}
