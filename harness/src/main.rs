//! The `hangup` command line; everything lives in the library.

fn main() -> std::process::ExitCode {
    hangup::cli::main()
}
