//! `bullseye`: argument parsing and wiring only.

mod cli;

/// mimalloc: fewer cycles per allocation than glibc malloc on the bid path
/// (measured in PERFORMANCE.md: A/B with the same load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // A file-size limit (`ulimit -f`) must fail the billing write with
    // EFBIG, which the ledger refuses and reports, not kill the process.
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread
    // starts has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    cli::main()
}
