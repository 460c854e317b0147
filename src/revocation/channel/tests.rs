use super::*;
use crate::revocation::set::digest;
use crate::revocation::store::fake::MemoryStore;

fn tok(id: &str) -> Entry {
    Entry::Token {
        id: digest(id),
        exp: 10_000,
    }
}

fn update<'a>(entries: &'a [Entry], cursor: &'a str, reset: bool) -> Update<'a> {
    Update {
        reset,
        entries,
        cursor,
        now_ms: 1,
    }
}

#[test]
fn workers_follow_deltas() {
    let store = MemoryStore::default();
    let keys = Keys::new("ns");
    let mut fetcher = Replica::default();
    let mut worker = Replica::default();
    assert_eq!(
        worker.sync(&store, &keys).unwrap(),
        0,
        "nothing published yet"
    );
    publish(
        &store,
        &keys,
        &mut fetcher,
        &update(&[tok("a")], "c1", true),
    )
    .unwrap();
    assert_eq!(worker.sync(&store, &keys).unwrap(), 1);
    assert!(worker.set.is_revoked(Some("a"), None, None));
    publish(
        &store,
        &keys,
        &mut fetcher,
        &update(&[tok("b")], "c2", false),
    )
    .unwrap();
    assert_eq!(
        worker.sync(&store, &keys).unwrap(),
        1,
        "only the new delta applied"
    );
    assert!(worker.set.is_revoked(Some("b"), None, None));
    assert_eq!(worker.version, 2);
    assert_eq!(worker.meta.cursor, "c2");
    assert_eq!(worker.sync(&store, &keys).unwrap(), 0, "already current");
}

#[test]
fn late_worker_catches_up_from_snapshot() {
    let store = MemoryStore::default();
    let keys = Keys::new("ns");
    let mut fetcher = Replica::default();
    publish(
        &store,
        &keys,
        &mut fetcher,
        &update(&[tok("a")], "c1", true),
    )
    .unwrap();
    for i in 0..100 {
        let e = [tok(&format!("t{i}"))];
        publish(&store, &keys, &mut fetcher, &update(&e, "c", false)).unwrap();
    }
    let mut late = Replica::default();
    late.sync(&store, &keys).unwrap();
    assert_eq!(late.set.len(), 101);
    assert_eq!(late.version, fetcher.version);
    assert!(late.set.is_revoked(Some("t99"), None, None));
    let delta_keys = store
        .keys()
        .iter()
        .filter(|k| k.contains(".delta."))
        .count() as u64;
    assert!(
        delta_keys <= RETAINED_DELTAS,
        "old deltas are removed: {delta_keys}"
    );
}

#[test]
fn reset_replaces_everything() {
    let store = MemoryStore::default();
    let keys = Keys::new("ns");
    let mut fetcher = Replica::default();
    let mut worker = Replica::default();
    publish(
        &store,
        &keys,
        &mut fetcher,
        &update(&[tok("a"), tok("b")], "c1", true),
    )
    .unwrap();
    publish(
        &store,
        &keys,
        &mut fetcher,
        &update(&[tok("c")], "c2", false),
    )
    .unwrap();
    worker.sync(&store, &keys).unwrap();
    assert_eq!(worker.set.len(), 3);
    publish(
        &store,
        &keys,
        &mut fetcher,
        &update(&[tok("z")], "e2-1", true),
    )
    .unwrap();
    worker.sync(&store, &keys).unwrap();
    assert_eq!(worker.set.len(), 1);
    assert!(worker.set.is_revoked(Some("z"), None, None));
    assert!(!worker.set.is_revoked(Some("a"), None, None));
    assert!(
        !store.keys().iter().any(|k| k.contains(".delta.")),
        "deltas before a reset are dropped"
    );
}

#[test]
fn empty_poll_moves_only_the_sync_time() {
    let store = MemoryStore::default();
    let keys = Keys::new("ns");
    let mut fetcher = Replica::default();
    publish(
        &store,
        &keys,
        &mut fetcher,
        &update(&[tok("a")], "c1", true),
    )
    .unwrap();
    let v = publish(
        &store,
        &keys,
        &mut fetcher,
        &Update {
            reset: false,
            entries: &[],
            cursor: "c1",
            now_ms: 99,
        },
    )
    .unwrap();
    assert_eq!(v, 1);
    let (meta, _) = read_meta(&store, &keys).unwrap().unwrap();
    assert_eq!(meta.last_sync_ms, 99);
    assert_eq!(meta.version, 1);
}

#[test]
fn a_second_fetcher_cannot_publish_over_the_first() {
    let store = MemoryStore::default();
    let keys = Keys::new("ns");
    let mut a = Replica::default();
    publish(&store, &keys, &mut a, &update(&[tok("a")], "c1", true)).unwrap();
    let (_, stale_cas) = read_meta(&store, &keys).unwrap().unwrap();
    publish(&store, &keys, &mut a, &update(&[tok("b")], "c2", false)).unwrap();
    // A write with the CAS token read before a's second publish fails.
    let r = store.set("ns.rev.meta", b"x", Some(stale_cas));
    assert_eq!(r, Err(StoreError::CasMismatch));
    // A new fetcher catches up before publishing, so nothing is lost.
    let mut b = Replica::default();
    publish(&store, &keys, &mut b, &update(&[tok("c")], "c3", false)).unwrap();
    let mut worker = Replica::default();
    worker.sync(&store, &keys).unwrap();
    for id in ["a", "b", "c"] {
        assert!(worker.set.is_revoked(Some(id), None, None), "{id}");
    }
}

#[test]
fn namespaces_do_not_mix() {
    let store = MemoryStore::default();
    let mut a = Replica::default();
    publish(
        &store,
        &Keys::new("one"),
        &mut a,
        &update(&[tok("a")], "c1", true),
    )
    .unwrap();
    let mut w = Replica::default();
    w.sync(&store, &Keys::new("two")).unwrap();
    assert!(w.set.is_empty());
}

#[test]
fn corrupt_data_keeps_the_last_good_set() {
    let store = MemoryStore::default();
    let keys = Keys::new("ns");
    let mut fetcher = Replica::default();
    let mut worker = Replica::default();
    publish(
        &store,
        &keys,
        &mut fetcher,
        &update(&[tok("a")], "c1", true),
    )
    .unwrap();
    worker.sync(&store, &keys).unwrap();
    publish(
        &store,
        &keys,
        &mut fetcher,
        &update(&[tok("b")], "c2", false),
    )
    .unwrap();
    store.set("ns.rev.delta.2", b"garbage", None).unwrap();
    store.set("ns.rev.snapshot", b"garbage", None).unwrap();
    assert!(worker.sync(&store, &keys).is_err());
    assert!(
        worker.set.is_revoked(Some("a"), None, None),
        "last good set kept"
    );
    assert_eq!(worker.version, 1);
    store.set("ns.rev.meta", b"garbage", None).unwrap();
    assert!(matches!(
        worker.sync(&store, &keys),
        Err(SyncError::Corrupt(_))
    ));
    assert!(worker.set.is_revoked(Some("a"), None, None));
}

#[test]
fn ten_thousand_entry_delta() {
    let store = MemoryStore::default();
    let keys = Keys::new("ns");
    let mut fetcher = Replica::default();
    let mut worker = Replica::default();
    publish(&store, &keys, &mut fetcher, &update(&[], "c0", true)).unwrap();
    worker.sync(&store, &keys).unwrap();
    let entries: Vec<Entry> = (0..10_000).map(|i| tok(&format!("j{i}"))).collect();
    publish(&store, &keys, &mut fetcher, &update(&entries, "c1", false)).unwrap();
    assert_eq!(worker.sync(&store, &keys).unwrap(), 10_000);
    assert_eq!(worker.set.len(), 10_000);
}
