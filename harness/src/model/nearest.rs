//! The known name nearest a mistyped one, for "did you mean" in the errors
//! of `hangup check`: `conect` is `connect`, `ECONRESET` is `ECONNRESET`,
//! `ESTABLISHD` is `ESTABLISHED`.
//!
//! A name is offered only when it is close: at most one edit in three
//! characters of what was written (Damerau-Levenshtein, so a swap of two
//! letters is one edit), compared without case, since errno and state
//! names are read without case. Otherwise the error lists every name, as
//! it did before: a far guess would mislead more than the list helps.

/// The candidate nearest `written`, when one is near enough; the first of
/// equally near ones.
pub fn nearest<'a>(
    written: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let written = written.to_ascii_lowercase();
    let allowed = (written.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&written, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(distance, _)| *distance > 0 && *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_near_name_is_offered_and_a_far_one_is_not() {
        let keys = ["listen", "accept", "connect", "close", "abort"];
        assert_eq!(nearest("conect", keys), Some("connect"));
        assert_eq!(nearest("acecpt", keys), Some("accept"));
        assert_eq!(nearest("closee", keys), Some("close"));
        assert_eq!(nearest("frobnicate", keys), None);
        assert_eq!(nearest("xy", keys), None);
        // Written exactly is not a typo: nothing to offer.
        assert_eq!(nearest("close", keys), None);
        assert_eq!(
            nearest("econreset", ["EPIPE", "ECONNRESET"]),
            Some("ECONNRESET")
        );
    }
}
