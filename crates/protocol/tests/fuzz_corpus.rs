//! Replays the committed `decode_frame` fuzz corpus (and any saved crash
//! inputs under `tests/fuzz-crashers/decode_frame`) through the fuzz
//! target's check, on the stable toolchain.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    };
    files.retain(|p| p.is_file());
    files.sort();
    files
}

#[test]
fn decode_frame_corpus_replays_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = inputs(&root.join("fuzz/corpus/decode_frame"));
    files.extend(inputs(&root.join("tests/fuzz-crashers/decode_frame")));
    assert!(
        files.len() >= 50,
        "expected at least 50 corpus inputs for decode_frame, found {}",
        files.len()
    );
    for f in &files {
        let data = fs::read(f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        common::decode_frame_check::decode_frame(&data);
    }
}
