//! The `jetsaga-lab` binary: parse the command line and run it. Everything else is in the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    jetsaga_lab::main(jetsaga_lab::LabCli::parse())
}
