//! Test kit for weft's cross-crate and property tests.
