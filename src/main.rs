//! The `freellmapi` binary: parse the command line and hand over to `cli`. It also picks the allocator, which the
//! library leaves to the program that links it.

/// mimalloc in the static musl builds, whose own allocator is slow; glibc's elsewhere. See Cargo.toml for why.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    freellmapi::cli::main()
}
