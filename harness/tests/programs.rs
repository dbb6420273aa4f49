//! The reference suites that run a program under test: the fixtures in
//! `fixtures/`, which `cargo test --workspace` builds before any test runs
//! and which the suites find beside this binary (`{fixture:NAME}`). One
//! test per case, named `<suite>::<case>`. cargo runs this from `harness/`.

fn main() -> std::process::ExitCode {
    hangup::runner::test_main("../fixtures/suites")
}
