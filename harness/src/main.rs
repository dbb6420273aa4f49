//! The `hangup` command line and its benchmark, over the library.

mod bench;
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
