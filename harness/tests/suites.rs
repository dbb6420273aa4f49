//! The reference suites, run through the same runner users get: one test
//! per case, named `<suite>::<case>`. cargo runs this from `harness/`.

fn main() -> std::process::ExitCode {
    hangup::runner::test_main("../suites")
}
