//! Arbitrary bytes as a suite file: parsing, validating and rendering the
//! result must never panic, abort or hang.
//!
//! On success it touches what `hangup check` and `list` read (each case's
//! test name, its expected duration, the suite's description); on failure it
//! renders the error's Display, the file:line:col report with source
//! excerpts, whose spans come from the parser.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match hangup::suite::parse_suite(Path::new("fuzz.toml"), data) {
        Ok(suite) => {
            let mut total = suite.description.as_deref().map_or(0, str::len);
            for case in &suite.cases {
                total += case.test_name(&suite).len();
                total += case.location.to_string().len();
                let _ = case.expected_duration();
            }
            std::hint::black_box(total);
        }
        Err(err) => {
            std::hint::black_box(err.to_string());
            if let hangup::suite::SuiteError::Invalid { diagnostics, .. } = &err {
                for diagnostic in diagnostics {
                    std::hint::black_box(diagnostic.to_string());
                }
            }
        }
    }
});
