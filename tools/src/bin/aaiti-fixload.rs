//! `aaiti-fixload`: a FIX 4.4 load generator and its trivial responder. The logic lives in
//! [`aaiti_tools::fixload`]; this only hands over to its command line.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    aaiti_tools::fixload::cli_main()
}
