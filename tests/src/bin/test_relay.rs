//! The relay process of `tests/client_crash.rs`: exactly `weft-relay`
//! (the same [`weft_relay::cli::main`]), built as a binary of this package
//! so the test finds it through `CARGO_BIN_EXE_test_relay` instead of
//! running `cargo build` itself.

fn main() -> std::process::ExitCode {
    weft_relay::cli::main()
}
