use super::*;
use crate::host::memory::MemoryStore;
use crate::revocation::set::digest;

fn tok(id: &str) -> Entry {
    Entry::Token {
        id: digest(id),
        exp: 10_000,
    }
}

/// A store with one fetcher publishing into it.
struct Bus {
    store: MemoryStore,
    keys: Keys,
    fetcher: Replica,
}

impl Bus {
    fn new(namespace: &str) -> Self {
        Bus {
            store: MemoryStore::default(),
            keys: Keys::new(namespace),
            fetcher: Replica::default(),
        }
    }

    /// Publishes an answer to a poll sent from the fetcher's cursor.
    fn publish(&mut self, entries: &[Entry], cursor: &str, reset: bool) -> u64 {
        let basis = self.fetcher.meta.cursor.clone();
        let update = update(entries, cursor, reset, &basis);
        publish(&self.store, &self.keys, &mut self.fetcher, &update).unwrap()
    }
}

const WRITER: u64 = 7;

fn update<'a>(entries: &'a [Entry], cursor: &'a str, reset: bool, basis: &'a str) -> Update<'a> {
    Update {
        reset,
        entries,
        cursor,
        now_ms: 1,
        basis,
        bound: None,
        writer: WRITER,
        scoped: false,
    }
}

#[test]
fn workers_follow_deltas() {
    let mut bus = Bus::new("ns");
    let mut worker = Replica::default();
    assert_eq!(
        worker.sync(&bus.store, &bus.keys).unwrap(),
        0,
        "nothing published yet"
    );
    bus.publish(&[tok("a")], "c1", true);
    assert_eq!(worker.sync(&bus.store, &bus.keys).unwrap(), 1);
    assert!(worker.set.is_revoked(Some("a"), None, None));
    bus.publish(&[tok("b")], "c2", false);
    assert_eq!(
        worker.sync(&bus.store, &bus.keys).unwrap(),
        1,
        "only the new delta applied"
    );
    assert!(worker.set.is_revoked(Some("b"), None, None));
    assert_eq!(worker.version, 2);
    assert_eq!(worker.meta.cursor, "c2");
    assert_eq!(
        worker.sync(&bus.store, &bus.keys).unwrap(),
        0,
        "already current"
    );
}

#[test]
fn late_worker_catches_up_from_snapshot() {
    let mut bus = Bus::new("ns");
    bus.publish(&[tok("a")], "c1", true);
    for i in 0..100 {
        let e = [tok(&format!("t{i}"))];
        bus.publish(&e, "c", false);
    }
    let mut late = Replica::default();
    late.sync(&bus.store, &bus.keys).unwrap();
    assert_eq!(late.set.len(), 101);
    assert_eq!(late.version, bus.fetcher.version);
    assert!(late.set.is_revoked(Some("t99"), None, None));
    let delta_keys = bus
        .store
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
    let mut bus = Bus::new("ns");
    let mut worker = Replica::default();
    bus.publish(&[tok("a"), tok("b")], "c1", true);
    bus.publish(&[tok("c")], "c2", false);
    worker.sync(&bus.store, &bus.keys).unwrap();
    assert_eq!(worker.set.len(), 3);
    bus.publish(&[tok("z")], "e2-1", true);
    worker.sync(&bus.store, &bus.keys).unwrap();
    assert_eq!(worker.set.len(), 1);
    assert!(worker.set.is_revoked(Some("z"), None, None));
    assert!(!worker.set.is_revoked(Some("a"), None, None));
    assert!(
        !bus.store.keys().iter().any(|k| k.contains(".delta.")),
        "deltas before a reset are dropped"
    );
}

#[test]
fn empty_poll_moves_only_the_sync_time() {
    let mut bus = Bus::new("ns");
    bus.publish(&[tok("a")], "c1", true);
    let v = publish(
        &bus.store,
        &bus.keys,
        &mut bus.fetcher,
        &Update {
            now_ms: 99,
            ..update(&[], "c1", false, "c1")
        },
    )
    .unwrap();
    assert_eq!(v, 1);
    let (meta, _) = read_meta(&bus.store, &bus.keys).unwrap().unwrap();
    assert_eq!(meta.last_sync_ms, 99);
    assert_eq!(meta.version, 1);
}

#[test]
fn a_second_fetcher_cannot_publish_over_the_first() {
    let store = MemoryStore::default();
    let keys = Keys::new("ns");
    let mut a = Replica::default();
    publish(&store, &keys, &mut a, &update(&[tok("a")], "c1", true, "")).unwrap();
    let (_, stale_cas) = read_meta(&store, &keys).unwrap().unwrap();
    publish(
        &store,
        &keys,
        &mut a,
        &update(&[tok("b")], "c2", false, "c1"),
    )
    .unwrap();
    // A write with the CAS token read before a's second publish fails.
    let r = store.set("ns.meta", b"x", Some(stale_cas));
    assert_eq!(r, Err(StoreError::CasMismatch));
    // A new fetcher catches up before publishing, so nothing is lost.
    let mut b = Replica::default();
    publish(
        &store,
        &keys,
        &mut b,
        &update(&[tok("c")], "c3", false, "c2"),
    )
    .unwrap();
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
        &update(&[tok("a")], "c1", true, ""),
    )
    .unwrap();
    let mut w = Replica::default();
    w.sync(&store, &Keys::new("two")).unwrap();
    assert!(w.set.is_empty());
}

#[test]
fn corrupt_data_keeps_the_last_good_set() {
    let mut bus = Bus::new("ns");
    let mut worker = Replica::default();
    bus.publish(&[tok("a")], "c1", true);
    worker.sync(&bus.store, &bus.keys).unwrap();
    bus.publish(&[tok("b")], "c2", false);
    bus.store
        .set("ns.delta.2.0000000000000007", b"garbage", None)
        .unwrap();
    bus.store
        .set("ns.snapshot.0000000000000007", b"garbage", None)
        .unwrap();
    assert!(worker.sync(&bus.store, &bus.keys).is_err());
    assert!(
        worker.set.is_revoked(Some("a"), None, None),
        "last good set kept"
    );
    assert_eq!(worker.version, 1);
    bus.store.set("ns.meta", b"garbage", None).unwrap();
    assert!(matches!(
        worker.sync(&bus.store, &bus.keys),
        Err(SyncError::Corrupt(_))
    ));
    assert!(worker.set.is_revoked(Some("a"), None, None));
}

#[test]
fn ten_thousand_entry_delta() {
    let mut bus = Bus::new("ns");
    let mut worker = Replica::default();
    bus.publish(&[], "c0", true);
    worker.sync(&bus.store, &bus.keys).unwrap();
    let entries: Vec<Entry> = (0..10_000).map(|i| tok(&format!("j{i}"))).collect();
    bus.publish(&entries, "c1", false);
    assert_eq!(worker.sync(&bus.store, &bus.keys).unwrap(), 10_000);
    assert_eq!(worker.set.len(), 10_000);
}

#[test]
fn an_outdated_answer_is_not_published() {
    let store = MemoryStore::default();
    let keys = Keys::new("ns");
    let mut a = Replica::default();
    publish(&store, &keys, &mut a, &update(&[tok("a")], "c1", true, "")).unwrap();
    // Fetcher b (its lease came after a's lapsed) publishes c2; a then
    // answers a poll it sent from c1.
    let mut b = Replica::default();
    b.sync(&store, &keys).unwrap();
    let theirs = [tok("b")];
    let ours = Update {
        writer: 2,
        ..update(&theirs, "c2", false, "c1")
    };
    publish(&store, &keys, &mut b, &ours).unwrap();
    let before = store.keys();
    let entries = [tok("late")];
    let late = update(&entries, "c1x", false, "c1");
    assert_eq!(
        publish(&store, &keys, &mut a, &late),
        Err(StoreError::CasMismatch)
    );
    assert_eq!(store.keys(), before, "nothing written");
    let mut worker = Replica::default();
    worker.sync(&store, &keys).unwrap();
    assert_eq!(worker.meta.cursor, "c2");
    assert!(!worker.set.is_revoked(Some("late"), None, None));
}

#[test]
fn a_fetcher_losing_the_race_mid_publish_leaves_the_winners_data_intact() {
    let store = MemoryStore::default();
    let keys = Keys::new("ns");
    let mut winner = Replica::default();
    publish(
        &store,
        &keys,
        &mut winner,
        &update(&[tok("a")], "c1", true, ""),
    )
    .unwrap();
    let mut worker = Replica::default();
    worker.sync(&store, &keys).unwrap();
    let mut loser = Replica::default();
    loser.sync(&store, &keys).unwrap();
    // The winner publishes version 2 between the loser's read of the meta
    // record and its write of it.
    let winner_keys = Keys::new("ns");
    store.before_next_set(
        "ns.meta",
        Box::new(move |store: &MemoryStore| {
            let mut winner = winner;
            let entries = [tok("theirs")];
            let theirs = Update {
                writer: 2,
                ..update(&entries, "c2", false, "c1")
            };
            publish(store, &winner_keys, &mut winner, &theirs).unwrap();
        }),
    );
    let entries = [tok("mine")];
    let mine = Update {
        writer: 3,
        ..update(&entries, "c2x", false, "c1")
    };
    assert_eq!(
        publish(&store, &keys, &mut loser, &mine),
        Err(StoreError::CasMismatch)
    );
    assert!(
        !store.keys().iter().any(|k| k.ends_with("0000000000000003")),
        "the loser's keys are gone: {:?}",
        store.keys()
    );
    // A worker following by deltas gets the winner's version 2.
    assert_eq!(worker.sync(&store, &keys).unwrap(), 1);
    assert!(worker.set.is_revoked(Some("theirs"), None, None));
    assert!(!worker.set.is_revoked(Some("mine"), None, None));
    assert_eq!(worker.meta.cursor, "c2");
}
