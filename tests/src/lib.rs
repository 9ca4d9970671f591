//! Test kit for weft's cross-crate and property tests.
pub mod doc_sim;
pub mod fuzz_checks;
pub mod laws;
pub mod proxy;
pub mod sim;
pub mod subjects;
pub mod traces;
