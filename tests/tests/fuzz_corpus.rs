//! Replays the committed cargo-fuzz corpora (and any saved crash inputs)
//! through the same checks the fuzz targets run, on the stable toolchain.

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

fn replay(target: &str, check: fn(&[u8]), min_inputs: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = inputs(&root.join("fuzz/corpus").join(target));
    files.extend(inputs(&root.join("tests/fuzz-crashers").join(target)));
    assert!(
        files.len() >= min_inputs,
        "expected at least {min_inputs} corpus inputs for {target}, found {}",
        files.len()
    );
    for f in &files {
        let data = fs::read(f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        check(&data);
    }
}

#[test]
fn decode_core_corpus_replays_clean() {
    replay("decode_core", weft_tests::fuzz_checks::decode_core, 100);
}

#[test]
fn apply_core_corpus_replays_clean() {
    replay("apply_core", weft_tests::fuzz_checks::apply_core, 100);
}

#[test]
fn doc_apply_corpus_replays_clean() {
    replay("doc_apply", weft_tests::fuzz_checks::doc_apply, 50);
}

#[test]
fn doc_load_corpus_replays_clean() {
    replay("doc_load", weft_tests::fuzz_checks::doc_load, 50);
}

#[test]
fn doc_converge_corpus_replays_clean() {
    replay("doc_converge", weft_tests::fuzz_checks::doc_converge, 50);
}

#[test]
fn decode_frame_corpus_replays_clean() {
    replay("decode_frame", weft_tests::fuzz_checks::decode_frame, 50);
}

#[test]
fn update_claims_corpus_replays_clean() {
    replay("update_claims", weft_tests::fuzz_checks::update_claims, 1);
}

#[test]
fn list_converge_corpus_replays_clean() {
    replay("list_converge", weft_tests::fuzz_checks::list_converge, 8);
}
