//! The write-ahead journal: how a batch becomes durable with one flush.
//!
//! Publishing a batch in the tlog-tiles layout creates and renames several
//! files (entry bundle, hash tiles, checkpoint) and needs three rounds of
//! flushes, about a millisecond on a good disk. Instead a batch is appended to
//! one journal file and flushed once; the layout is brought up to date from
//! memory in the background and, after a crash, from the journal when the log
//! is next opened. The journal begins with a base record, the signed checkpoint
//! of a durably published tree, followed by the batches appended since.
//!
//! Written here because the format is two record kinds; the framing (length,
//! truncated SHA-256) only has to find where a torn last write begins.

use sha2::{Digest, Sha256};

use crate::tiles;

/// Bytes of the record header: payload length and checksum.
const HEADER: usize = 4 + 8;
const BASE: u8 = 1;
const ENTRIES: u8 = 2;

/// One record of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The tree of `size` entries, durably published; its signed checkpoint.
    Base {
        /// Entries in the published tree.
        size: u64,
        /// The signed checkpoint of that tree.
        checkpoint: Vec<u8>,
    },
    /// A batch: entries appended from index `first` on.
    Entries {
        /// The index of the first entry.
        first: u64,
        /// The entries, in order.
        entries: Vec<Vec<u8>>,
    },
}

fn frame(payload: &[u8], out: &mut Vec<u8>) {
    let length = u32::try_from(payload.len()).expect("a journal record is smaller than 4 GiB");
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload)[..8]);
    out.extend_from_slice(payload);
}

/// The bytes of a base record.
pub fn base(size: u64, checkpoint: &[u8]) -> Vec<u8> {
    let mut payload = vec![BASE];
    payload.extend_from_slice(&size.to_le_bytes());
    payload.extend_from_slice(checkpoint);
    let mut out = Vec::with_capacity(HEADER + payload.len());
    frame(&payload, &mut out);
    out
}

/// The bytes of a batch record. Each entry fits a bundle (≤ 65,535 bytes).
pub fn entries<E: AsRef<[u8]>>(first: u64, entries: &[E]) -> Vec<u8> {
    let mut payload = vec![ENTRIES];
    payload.extend_from_slice(&first.to_le_bytes());
    for entry in entries {
        tiles::push_entry(&mut payload, entry.as_ref());
    }
    let mut out = Vec::with_capacity(HEADER + payload.len());
    frame(&payload, &mut out);
    out
}

fn parse(payload: &[u8]) -> Option<Record> {
    let (&kind, rest) = payload.split_first()?;
    let (number, rest) = rest.split_first_chunk::<8>()?;
    let number = u64::from_le_bytes(*number);
    match kind {
        BASE => Some(Record::Base { size: number, checkpoint: rest.to_vec() }),
        ENTRIES => {
            let mut entries = Vec::new();
            let mut rest = rest;
            while let Some((length, tail)) = rest.split_first_chunk::<2>() {
                let length = usize::from(u16::from_be_bytes(*length));
                entries.push(tail.get(..length)?.to_vec());
                rest = &tail[length..];
            }
            rest.is_empty().then_some(Record::Entries { first: number, entries })
        }
        _ => None,
    }
}

/// The records of a journal, up to the first one that is torn or damaged
/// (the end of what was made durable).
pub fn read(mut journal: &[u8]) -> Vec<Record> {
    let mut records = Vec::new();
    while let Some((header, rest)) = journal.split_first_chunk::<HEADER>() {
        let length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let Some(payload) = rest.get(..length) else { break };
        if length == 0 || Sha256::digest(payload)[..8] != header[4..] {
            break;
        }
        let Some(record) = parse(payload) else { break };
        records.push(record);
        journal = &rest[length..];
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_torn_tail_is_where_the_journal_ends() {
        let mut journal = base(7, b"signed checkpoint");
        journal.extend(entries(7, &[b"a".to_vec(), Vec::new(), b"ccc".to_vec()]));
        let whole = read(&journal);
        assert_eq!(
            whole,
            [
                Record::Base { size: 7, checkpoint: b"signed checkpoint".to_vec() },
                Record::Entries { first: 7, entries: vec![b"a".to_vec(), Vec::new(), b"ccc".to_vec()] },
            ]
        );
        let last = entries(10, &[b"d"]);
        journal.extend(&last);
        assert_eq!(read(&journal).len(), 3);
        // Cut anywhere inside the last record, or a byte of it flipped: it is not there.
        for cut in 1..last.len() {
            assert_eq!(read(&journal[..journal.len() - cut]), whole, "cut {cut}");
        }
        for flip in 0..last.len() {
            let mut damaged = journal.clone();
            let at = damaged.len() - last.len() + flip;
            damaged[at] ^= 0x40;
            assert_eq!(read(&damaged), whole, "flip {flip}");
        }
        // Zeros after the end (a file extended but not written) end it too.
        journal.extend([0u8; 64]);
        assert_eq!(read(&journal).len(), 3);
    }
}
