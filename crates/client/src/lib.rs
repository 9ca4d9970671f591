//! weft offline-first sync client (in progress).
