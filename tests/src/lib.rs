//! Test kit for weft's cross-crate and property tests.
pub mod traces;
