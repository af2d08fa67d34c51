//! The `aaiti` binary: everything lives in `aaiti_core::cli`.

fn main() -> std::process::ExitCode {
    aaiti_core::cli::main()
}
