//! The shared-data codec between the fetcher and the workers:
//! `revocation::codec::{decode_batch, decode_meta}` on raw bytes, and
//! round trips both ways: encode(decode(b)) == b for every decodable b (the
//! format is canonical), decode(encode(x)) == x for every x built from the
//! fuzz data; `decode_batch_into` (snapshots straight into a set) agrees
//! with `decode_batch`.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use jwt_auth_core::revocation::codec::{
    decode_batch, decode_batch_into, decode_meta, encode_batch, encode_meta, Meta,
};
use jwt_auth_core::revocation::set::Entry;
use jwt_auth_core::revocation::RevocationSet;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum RawEntry {
    Token { id: u128, exp: u64 },
    Subject { id: u128, before: u64, exp: u64 },
}

impl From<&RawEntry> for Entry {
    fn from(e: &RawEntry) -> Entry {
        match *e {
            RawEntry::Token { id, exp } => Entry::Token { id, exp },
            RawEntry::Subject { id, before, exp } => Entry::Subject { id, before, exp },
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Streaming decode (straight into a set, as snapshots are loaded)
    // agrees with decoding to a list.
    let mut streamed = RevocationSet::new();
    let into = decode_batch_into(data, &mut streamed);
    assert_eq!(
        into.as_ref().ok(),
        decode_batch(data).ok().map(|b| b.version).as_ref(),
        "decode_batch_into and decode_batch disagree"
    );
    if let Ok(batch) = decode_batch(data) {
        let mut applied = RevocationSet::new();
        applied.apply(&batch.entries);
        assert_eq!(streamed.len(), applied.len());
        let held: Vec<Entry> = applied.entries().collect();
        assert!(streamed.entries().all(|e| held.contains(&e)));
    }
    if let Ok(batch) = decode_batch(data) {
        let again = encode_batch(batch.version, batch.entries.iter().copied());
        assert_eq!(again, data, "batch encoding is not canonical");
        // Applying any decodable batch is total.
        let mut set = RevocationSet::new();
        set.apply(&batch.entries);
        assert!(set.len() <= batch.entries.len());
        let _ = set.is_revoked(Some("jti"), Some("sub"), Some(1));
        set.purge(u64::MAX, u64::MAX);
    }
    if let Ok(meta) = decode_meta(data) {
        assert_eq!(encode_meta(&meta), data, "meta encoding is not canonical");
    }

    let mut u = Unstructured::new(data);
    let Ok(version) = u.arbitrary::<u64>() else {
        return;
    };
    let Ok(raw) = u.arbitrary::<Vec<RawEntry>>() else {
        return;
    };
    let entries: Vec<Entry> = raw.iter().map(Entry::from).collect();
    let decoded = decode_batch(&encode_batch(version, entries.iter().copied()));
    let batch = decoded.unwrap_or_else(|e| panic!("own batch refused: {e}"));
    assert_eq!(batch.version, version);
    assert_eq!(batch.entries, entries);

    let Ok(numbers) = u.arbitrary::<[u64; 6]>() else {
        return;
    };
    let cursor: String = u.arbitrary().unwrap_or_default();
    let meta = Meta {
        version: numbers[0],
        base: numbers[1],
        snapshot: numbers[2],
        oldest_delta: numbers[3],
        last_sync_ms: numbers[4],
        held: numbers[5],
        cursor,
        epoch: u.arbitrary().unwrap_or_default(),
        reset_time: u.arbitrary().unwrap_or_default(),
        writers: u.arbitrary().unwrap_or_default(),
        snapshot_writer: u.arbitrary().unwrap_or_default(),
        scoped: u.arbitrary().unwrap_or_default(),
    };
    let decoded =
        decode_meta(&encode_meta(&meta)).unwrap_or_else(|e| panic!("own meta refused: {e}"));
    assert_eq!(decoded, meta);
});
