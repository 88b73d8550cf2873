//! How the officer's readers walk the store.

/// Records read from the store at a time by the officer's readers, so
/// memory stays bounded whatever the length of the log.
pub const SCAN_CHUNK: usize = 4096;
