//! The `hangup` command line and its benchmark, over the library.

#[macro_use]
mod out;

mod bench;
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
