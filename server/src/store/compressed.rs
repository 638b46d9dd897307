//! zstd compression of stored values, shared by both stores: a value
//! compressed is its zstd frame behind a tag byte that JSON never starts
//! with, so that compressed and plain values can sit side by side.

use super::StoreError;
use std::cell::RefCell;

/// The tag byte stored before a zstd frame (JSON never starts with it).
pub const ZSTD: u8 = 0x01;
/// zstd's level: fast, and most of the gain on JSON.
const ZSTD_LEVEL: i32 = 1;
/// No compressed value holds more than this once decompressed.
const MAX_UNPACKED: u64 = 64 << 20;

thread_local! {
    /// One compression context per thread, kept: creating one costs more
    /// than compressing a block.
    static COMPRESSOR: RefCell<zstd::bulk::Compressor<'static>> = RefCell::new(
        zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("a zstd context"),
    );
    static DECOMPRESSOR: RefCell<zstd::bulk::Decompressor<'static>> =
        RefCell::new(zstd::bulk::Decompressor::new().expect("a zstd context"));
}

/// `bytes` compressed, behind the [`ZSTD`] tag.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + zstd::zstd_safe::compress_bound(bytes.len()));
    out.push(ZSTD);
    COMPRESSOR.with_borrow_mut(|c| {
        out.extend(c.compress(bytes).expect("compressing into memory"));
    });
    out
}

/// What [`compress`] compressed; `what` names it in the error.
pub fn decompress(packed: &[u8], what: &str) -> Result<Vec<u8>, StoreError> {
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{what}: {e}"));
    let frame = match packed.split_first() {
        Some((&ZSTD, frame)) => frame,
        _ => return Err(corrupt(&"not a zstd value")),
    };
    // Frames written by `compress` state their size: allocate that much.
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) if size <= MAX_UNPACKED => size,
        _ => return Err(corrupt(&"no size, or too large")),
    };
    DECOMPRESSOR.with_borrow_mut(|d| d.decompress(frame, size as usize).map_err(|e| corrupt(&e)))
}
