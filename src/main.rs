//! `bullseye`: argument parsing and wiring only.

mod cli;

/// mimalloc: fewer cycles per allocation than glibc malloc on the bid path
/// (measured in PERFORMANCE.md: A/B with the same load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
