//! Shared helpers for weft's benchmarks.
