//! `weft-edit`: a collaborative terminal text editor.
//!
//! ```text
//! weft-edit notes                                      # local only
//! weft-edit notes --relay ws://127.0.0.1:8787/ws       # live with a relay
//! ```

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use weft_edit::{app, undo::ReplicaUndo, view, Options};

#[derive(Parser, Debug)]
#[command(
    name = "weft-edit",
    version,
    about = "A collaborative terminal text editor on weft: edits are saved as you type, work offline and sync through a relay"
)]
struct Cli {
    /// The document to open (1–128 of A–Z a–z 0–9 . _ ~ -).
    doc: String,
    /// The relay to sync with, e.g. ws://127.0.0.1:8787/ws (wss:// for
    /// TLS). Without it the document stays on this machine.
    #[arg(long, env = "WEFT_RELAY")]
    relay: Option<String>,
    /// Directory of the local store [default: $XDG_DATA_HOME/weft-edit or
    /// ~/.local/share/weft-edit]. Two editors on one machine need two.
    #[arg(long, env = "WEFT_EDIT_DATA")]
    data: Option<PathBuf>,
    /// Your name, shown to other users [default: $USER].
    #[arg(long)]
    name: Option<String>,
    /// Your colour, #rrggbb [default: derived from the name].
    #[arg(long)]
    color: Option<String>,
    /// File holding a token for an authenticating relay.
    #[arg(long, env = "WEFT_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// A root certificate (PEM) to trust for wss:// besides the system's.
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

fn default_data() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("weft-edit"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".local/share/weft-edit"))
}

fn options(cli: Cli) -> Result<Options, String> {
    let data = cli
        .data
        .or_else(default_data)
        .ok_or("no data directory: give --data (neither XDG_DATA_HOME nor HOME is set)")?;
    let mut options = Options::new(&cli.doc, data);
    if let Some(name) = cli.name {
        options.color = view::color_for(&name);
        options.user = name;
    }
    if let Some(color) = cli.color {
        if view::parse_color(&color).is_none() {
            return Err(format!("--color {color}: expected #rrggbb"));
        }
        options.color = color;
    }
    options.relay = cli.relay;
    if let Some(path) = cli.token_file {
        let token = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        options.token = Some(token.trim_end().to_owned());
    }
    if let Some(path) = cli.ca_file {
        options.root_certificate =
            Some(std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?);
    }
    Ok(options)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = match options(cli) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("weft-edit: {e}");
            return ExitCode::from(2);
        }
    };
    match app::run(options, Box::new(ReplicaUndo)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weft-edit: {e}");
            ExitCode::FAILURE
        }
    }
}
