//! `weft-relay`: the relay server binary (and a token minting helper);
//! see [`weft_relay::cli`] and `--help`.
//!
//! ```text
//! weft-relay --insecure-no-auth                    # 127.0.0.1:8787, ./weft-data
//! weft-relay --listen 0.0.0.0:8787 --data /var/lib/weft --jwt-secret-file /etc/weft/secret
//! weft-relay token --jwt-secret-file secret --doc 'team-*' --write --ttl 3600
//! ```

fn main() -> std::process::ExitCode {
    weft_relay::cli::main()
}
