use std::process::ExitCode;

fn main() -> ExitCode {
    spar_host::cli::main()
}
