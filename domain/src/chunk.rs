//! The arithmetic of snapshot chunks: a room's messages are grouped by seq
//! into spans of [`CHUNK_SPAN`] seqs, so that a snapshot can be written and
//! read a chunk at a time (see [`crate::snapshot`]).

/// How many seqs one chunk spans. A chunk holds at most this many messages.
pub const CHUNK_SPAN: u64 = 256;

/// The chunk that holds the message with this seq.
pub fn chunk_of(seq: u64) -> u64 {
    seq.saturating_sub(1) / CHUNK_SPAN
}

/// First and last seq a chunk spans.
pub fn chunk_bounds(index: u64) -> (u64, u64) {
    (index * CHUNK_SPAN + 1, (index + 1) * CHUNK_SPAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_seq_falls_in_the_chunk_whose_bounds_hold_it() {
        for seq in [1, 2, 255, 256, 257, 512, 513, 1_000_000] {
            let (lo, hi) = chunk_bounds(chunk_of(seq));
            assert!(lo <= seq && seq <= hi, "seq {seq}");
            assert_eq!(hi - lo + 1, CHUNK_SPAN);
        }
        assert_eq!(chunk_of(256), 0);
        assert_eq!(chunk_of(257), 1);
    }
}
