//! The `jetsaga` binary: parse the command line and run it. Everything else is in the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    jetsaga_cli::main(jetsaga_cli::Cli::parse())
}
