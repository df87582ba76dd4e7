//! The failure a dead letter names, without what is particular to the message: the order id in a
//! subject, an event id, a count of deliveries. Dead letters that failed the same way then fall
//! into one group, which an operator requeues or discards at once, while each letter keeps its
//! own reason.

/// `reason` with every UUID written `<id>` and every stand-alone number `<n>` (one that does not
/// continue a word such as `utf-8`).
pub fn shape(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut rest = reason;
    while let Some(c) = rest.chars().next() {
        let starts_word = out
            .chars()
            .next_back()
            .is_none_or(|p| !(p.is_ascii_alphanumeric() || p == '-' || p == '_'));
        if starts_word && is_uuid(rest) {
            out.push_str("<id>");
            rest = &rest[36..];
        } else if starts_word && c.is_ascii_digit() {
            let len = rest
                .find(|d: char| !d.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            let word = &rest[..len];
            if word.bytes().all(|b| b.is_ascii_digit()) {
                out.push_str("<n>");
            } else {
                out.push_str(word);
            }
            rest = &rest[len..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Whether `s` starts with a UUID (8-4-4-4-12 hex digits) that is not part of a longer word.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 36 || b.get(36).is_some_and(u8::is_ascii_alphanumeric) {
        return false;
    }
    b[..36].iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_hexdigit(),
    })
}

#[cfg(test)]
mod tests {
    use super::shape;

    #[test]
    fn the_order_in_a_subject_is_not_part_of_the_failure() {
        assert_eq!(
            shape("message on orders.cancelled.d2eaab19-981d-47cb-bd2e-e72bc5440a83 has no ce-id header"),
            "message on orders.cancelled.<id> has no ce-id header"
        );
    }

    #[test]
    fn event_ids_and_counts_are_not_part_of_the_failure() {
        assert_eq!(
            shape("event 1daa1c5f-54d9-5d0a-ad77-158efce49879 failed 5 deliveries; last error: points are frozen"),
            "event <id> failed <n> deliveries; last error: points are frozen"
        );
    }

    #[test]
    fn words_with_digits_stay_as_they_are() {
        assert_eq!(
            shape("utf-8 at byte 12 of v1 in ce-id"),
            "utf-8 at byte <n> of v1 in ce-id"
        );
        assert_eq!(shape("sha 1daa1c5f5 x"), "sha 1daa1c5f5 x");
        assert_eq!(shape("größe 3 ✓"), "größe <n> ✓");
        assert_eq!(shape(""), "");
    }
}
