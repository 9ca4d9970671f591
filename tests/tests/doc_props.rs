//! Document-level tests for `weft_core::Doc` (issue 4, "Tests").
//!
//! Documents are always driven through the public API: random transactions
//! on 2–5 replicas, updates delivered out of order, duplicated, dropped and
//! resent (see `weft_tests::doc_sim`). The case count comes from
//! `PROPTEST_CASES`; failures are persisted next to this file in
//! `doc_props.proptest-regressions`.

#[path = "doc_props/claims.rs"]
mod doc_props_claims;
#[path = "doc_props/converge.rs"]
mod doc_props_converge;
#[path = "doc_props/encoding.rs"]
mod doc_props_encoding;
#[path = "doc_props/errors.rs"]
mod doc_props_errors;
#[path = "doc_props/model.rs"]
mod doc_props_model;
#[path = "doc_props/observers.rs"]
mod doc_props_observers;
#[path = "doc_props/pending.rs"]
mod doc_props_pending;
#[path = "doc_props/persist.rs"]
mod doc_props_persist;
#[path = "doc_props/robust.rs"]
mod doc_props_robust;
