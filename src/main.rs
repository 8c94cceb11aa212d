//! The `freellmapi` binary: parse the command line and hand over to `cli`. It also picks the allocator: the
//! library leaves that to the program that links it.

/// mimalloc, not the system allocator: see Cargo.toml for why.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    freellmapi::cli::main()
}
