//! The `flurry` binary: parse arguments, then hand over to [`flurry_cli::run`].

fn main() -> std::process::ExitCode {
    flurry_cli::run()
}
