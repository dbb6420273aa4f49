//! What differs between two runs of one program by design, masked out of
//! the lines it printed before they are compared: the numbers and ids
//! every program prints ([`masked`]), and what a suite says varies in its
//! own program's output (`mask`, [`Masks`]).

use crate::model::Escaped;
use crate::suite::limits::MAX_MASKS;

/// A suite's masks over its program's output (`mask`), compiled: each
/// match reads as `#`, and a line one matches whole is not compared at
/// all (a line printed or not by timing: a warning that an operation was
/// slow).
#[derive(Debug, Clone, Default)]
pub struct Masks {
    written: Vec<String>,
    compiled: Vec<regex::Regex>,
}

/// Why a report's masks cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MaskError {
    /// More than a suite may list.
    #[error("it lists {0} masks, and a suite lists at most {MAX_MASKS}")]
    TooMany(usize),
    /// One does not compile within the pattern limit.
    #[error("its mask `{}` is not a regular expression hangup compiles: {}", Escaped(.mask), Escaped(.why))]
    Invalid {
        /// The mask as written.
        mask: String,
        /// Why.
        why: String,
    },
}

impl Masks {
    /// `written` compiled, as the suite's parser checks them: at most
    /// [`MAX_MASKS`], each within the pattern limit. A report read from
    /// outside may hold anything here.
    pub fn compile(written: &[String]) -> Result<Masks, MaskError> {
        if written.len() > MAX_MASKS {
            return Err(MaskError::TooMany(written.len()));
        }
        let compiled = written
            .iter()
            .map(|mask| {
                crate::suite::limits::pattern(mask).map_err(|e| MaskError::Invalid {
                    mask: mask.clone(),
                    why: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Masks {
            written: written.to_vec(),
            compiled,
        })
    }

    /// The masks as written.
    pub fn written(&self) -> &[String] {
        &self.written
    }

    /// `line` as it is compared: each of these masks' matches as `#`,
    /// then every number and id (as every line is); none when a mask matches
    /// the whole line.
    pub fn apply(&self, line: &str) -> Option<String> {
        let mut text = std::borrow::Cow::Borrowed(line);
        for mask in &self.compiled {
            if mask
                .find_iter(&text)
                .any(|m| m.start() == 0 && m.end() == text.len())
            {
                return None;
            }
            if mask.is_match(&text) {
                text = std::borrow::Cow::Owned(mask.replace_all(&text, "#").into_owned());
            }
        }
        Some(masked(&text))
    }
}

/// A line with what differs between any two runs of the same program
/// masked as `#`: every run of digits (ports, pids, times, counts), and
/// whole any id or address whose letters would otherwise show through in
/// a pattern of their own: a `0x` address (`0x#`), a word of six or more
/// hex digits with a digit in it (`7f3a2b`), and hex groups joined by
/// dashes with eight or more hex digits in all (a UUID, a date).
///
/// Small numbers are masked too, though a status code may be what
/// changed: how many chunks or retries a line counts is timing as often
/// as not, and a line printed in one run only is still found.
pub(super) fn masked(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        let word_start = i == 0 || !is_word(chars[i - 1]);
        if word_start && is_word(chars[i]) {
            // Hex groups joined by dashes (a UUID, a date), ending at a word's end.
            let dashed = chars[i..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit() || **c == '-')
                .count();
            let group = &chars[i..i + dashed];
            let ends_word = chars.get(i + dashed).is_none_or(|c| !is_word(*c));
            let hex_digits = group.iter().filter(|c| c.is_ascii_hexdigit()).count();
            let has_digit = group.iter().any(char::is_ascii_digit);
            if ends_word && group.contains(&'-') && hex_digits >= 8 && has_digit {
                out.push('#');
                i += dashed;
                continue;
            }
            let word = chars[i..].iter().take_while(|c| is_word(**c)).count();
            let text = &chars[i..i + word];
            let hex_after_0x = text.len() > 2
                && text[0] == '0'
                && matches!(text[1], 'x' | 'X')
                && text[2..].iter().all(char::is_ascii_hexdigit);
            if hex_after_0x {
                out.push_str("0x#");
                i += word;
                continue;
            }
            if word >= 6
                && text.iter().all(char::is_ascii_hexdigit)
                && text.iter().any(char::is_ascii_digit)
            {
                out.push('#');
                i += word;
                continue;
            }
        }
        if chars[i].is_ascii_digit() {
            out.push('#');
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masks(written: &[&str]) -> Masks {
        Masks::compile(&written.iter().map(|m| m.to_string()).collect::<Vec<_>>()).expect("masks")
    }

    #[test]
    fn a_suite_s_masks_read_as_a_hash_before_numbers_are_masked() {
        let m = masks(&["req-[a-z]+", "user \\w+"]);
        assert_eq!(
            m.apply("req-abcdef served for user alice in 12 ms")
                .as_deref(),
            Some("# served for # in # ms")
        );
        // No mask: only the numbers.
        assert_eq!(
            Masks::default().apply("req-abcdef in 12 ms").as_deref(),
            Some("req-abcdef in # ms")
        );
    }

    #[test]
    fn a_line_a_mask_matches_whole_is_not_compared() {
        let m = masks(&["^WARN .* took \\d+ ms$"]);
        assert_eq!(m.apply("WARN SecureRandom took 340 ms"), None);
        assert_eq!(
            m.apply("WARN SecureRandom took 340 ms!").as_deref(),
            Some("WARN SecureRandom took # ms!")
        );
    }

    #[test]
    fn masks_from_a_report_are_bounded_and_checked() {
        let many: Vec<String> = (0..=MAX_MASKS).map(|i| format!("m{i}")).collect();
        assert_eq!(
            Masks::compile(&many).unwrap_err(),
            MaskError::TooMany(MAX_MASKS + 1)
        );
        let err = Masks::compile(&["(\n".to_string()])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("its mask `(\\n` is not a regular expression"),
            "{err}"
        );
        let huge = Masks::compile(&["\\w{90}\\w{90}\\w{90}".to_string()]).unwrap_err();
        assert!(huge.to_string().contains("exceeds size limit"), "{huge}");
    }
}
