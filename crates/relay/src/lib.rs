//! weft relay server (in progress).
