//! The extraction worker on its own, for this crate's tests and tools that link
//! flurry-memory without the `flurry` binary (which runs the same code as
//! `flurry __extract`).

fn main() -> std::process::ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    flurry_memory::worker_main(
        &args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
    )
}
