//! `aaiti-journal`: inspect AAITI journals. The logic lives in
//! [`aaiti_tools::journal_cli`]; this only parses arguments, runs and sets the exit code.
#![forbid(unsafe_code)]

use std::io::{BufWriter, Write as _};
use std::process::ExitCode;

use aaiti_tools::journal_cli::{self, Cli, CliError};
use clap::Parser as _;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let result = journal_cli::run(&cli, &mut out)
        .and_then(|code| out.flush().map(|()| code).map_err(CliError::from));
    match result {
        Ok(code) => ExitCode::from(code),
        // `aaiti-journal dump ... | head`: the reader has what it wanted.
        Err(error) if error.is_broken_pipe() => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("aaiti-journal: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
