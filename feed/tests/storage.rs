//! The embedded store's log format, torn-tail recovery and compaction.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use revocation_feed::embedded::{EmbeddedStore, COMPACT_FILE, LOG_FILE};
use revocation_feed::wal::{self, Header, LogError, HEADER_LEN, RECORD_OVERHEAD};
use revocation_feed::FeedLimits;
use revocation_protocol::{FeedResponse, Revocation, RevokedSubject, RevokedToken};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

fn token(jti: &str, exp: u64) -> Revocation {
    Revocation::Token(RevokedToken {
        jti: jti.into(),
        iss: None,
        exp,
    })
}

fn subject(sub: &str, before: u64, exp: u64) -> Revocation {
    Revocation::Subject(RevokedSubject {
        sub: sub.into(),
        iss: None,
        before,
        exp,
    })
}

/// `entry` scoped to issuer `iss`.
fn of(iss: &str, entry: Revocation) -> Revocation {
    match entry {
        Revocation::Token(t) => Revocation::Token(RevokedToken {
            iss: Some(iss.into()),
            ..t
        }),
        Revocation::Subject(s) => Revocation::Subject(RevokedSubject {
            iss: Some(iss.into()),
            ..s
        }),
    }
}

/// One record in the layout from before issuer scopes, written by hand
/// (not by `wal`): entries `(seq, kind, exp, before, id)`, kind 1 for a jti
/// and 2 for a sub.
fn pre_issuer_record(entries: &[(u64, u8, u64, u64, &str)]) -> Vec<u8> {
    let mut payload = (entries.len() as u32).to_le_bytes().to_vec();
    for (seq, kind, exp, before, id) in entries {
        payload.extend_from_slice(&seq.to_le_bytes());
        payload.push(*kind);
        payload.extend_from_slice(&exp.to_le_bytes());
        payload.extend_from_slice(&before.to_le_bytes());
        payload.extend_from_slice(&(id.len() as u32).to_le_bytes());
        payload.extend_from_slice(id.as_bytes());
    }
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// The 32-byte header of that layout, also by hand.
fn pre_issuer_header(epoch: u64, base_seq: u64) -> Vec<u8> {
    let mut out = b"RVFDLOG1".to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(&base_seq.to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Entries of a response as `(kind:id, iss)`, sorted.
fn scoped_ids(r: &FeedResponse) -> Vec<(String, Option<String>)> {
    let mut v: Vec<(String, Option<String>)> = r
        .revoked
        .iter()
        .map(|t| (t.jti.clone(), t.iss.clone()))
        .chain(
            r.revoked_subjects
                .iter()
                .map(|s| (format!("sub:{}", s.sub), s.iss.clone())),
        )
        .collect();
    v.sort();
    v
}

fn pair(id: &str, iss: Option<&str>) -> (String, Option<String>) {
    (id.to_string(), iss.map(str::to_string))
}

fn now() -> u64 {
    revocation_feed::api::unix_now()
}

fn open(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::open(dir, FeedLimits::default(), now()).unwrap()
}

fn snapshot(s: &EmbeddedStore) -> FeedResponse {
    FeedResponse::parse(&s.poll(None, now(), false).unwrap().body).unwrap()
}

fn all_ids(r: &FeedResponse) -> Vec<String> {
    let mut v: Vec<String> = r
        .revoked
        .iter()
        .map(|t| t.jti.clone())
        .chain(r.revoked_subjects.iter().map(|s| format!("sub:{}", s.sub)))
        .collect();
    v.sort();
    v
}

fn seq_of(cursor: &str) -> u64 {
    cursor.split_once('-').unwrap().1.parse().unwrap()
}

/// A log image: header plus one record per group.
fn image(groups: &[Vec<(u64, Revocation)>]) -> (Vec<u8>, Vec<usize>) {
    let mut out = wal::encode_header(&Header {
        epoch: 0xfeed,
        base_seq: 0,
    })
    .to_vec();
    let mut ends = Vec::new();
    for g in groups {
        wal::encode_record(g.iter().map(|(s, r)| (*s, r)), &mut out);
        ends.push(out.len());
    }
    (out, ends)
}

#[test]
fn header_round_trips_and_damage_is_refused() {
    let h = Header {
        epoch: 0x0123_4567_89ab_cdef,
        base_seq: 42,
    };
    let bytes = wal::encode_header(&h);
    assert_eq!(bytes.len(), HEADER_LEN);
    assert_eq!(wal::decode_header(&bytes).unwrap(), h);
    for i in 0..HEADER_LEN {
        let mut bad = bytes;
        bad[i] ^= 0x40;
        assert!(
            matches!(wal::decode_header(&bad), Err(LogError::BadHeader(_))),
            "flipped byte {i}"
        );
    }
    assert!(wal::decode_header(&bytes[..HEADER_LEN - 1]).is_err());
}

#[test]
fn records_round_trip() {
    let groups = vec![
        vec![(1, token("a", 10))],
        vec![(2, subject("s p a c e", 5, 20)), (3, token("é", u64::MAX))],
    ];
    let (bytes, ends) = image(&groups);
    let r = wal::replay(&bytes).unwrap();
    assert_eq!(r.records, 2);
    assert_eq!(r.valid_len as usize, bytes.len());
    assert_eq!(r.last_seq, 3);
    assert_eq!(r.header.epoch, 0xfeed);
    let flat: Vec<(u64, Revocation)> = groups.into_iter().flatten().collect();
    assert_eq!(r.entries, flat);
    // Record layout: length, CRC, then count and entries.
    let first_len = u32::from_le_bytes(bytes[HEADER_LEN..HEADER_LEN + 4].try_into().unwrap());
    assert_eq!(HEADER_LEN + RECORD_OVERHEAD + first_len as usize, ends[0]);
}

#[test]
fn a_torn_last_record_is_cut_at_every_length() {
    let groups = vec![
        vec![(1, token("keep-1", 10))],
        vec![(2, token("keep-2", 10)), (3, subject("keep-3", 1, 10))],
        vec![
            (4, of("issuer-a", token("torn-a", 10))),
            (5, of("issuer-b", subject("torn-b", 1, 10))),
        ],
    ];
    let (bytes, ends) = image(&groups);
    let boundary = ends[1];
    for cut in boundary..bytes.len() {
        let r = wal::replay(&bytes[..cut]).unwrap();
        assert_eq!(r.valid_len as usize, boundary, "cut at {cut}");
        assert_eq!(r.records, 2);
        assert_eq!(r.last_seq, 3);
    }
    assert_eq!(wal::replay(&bytes).unwrap().records, 3);
}

#[test]
fn a_corrupt_or_zeroed_tail_is_cut() {
    let groups = vec![vec![(1, token("a", 10))], vec![(2, token("b", 10))]];
    let (bytes, ends) = image(&groups);
    // A flipped bit anywhere in the last record fails its CRC.
    for i in ends[0]..ends[1] {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        let r = wal::replay(&bad).unwrap();
        assert_eq!(r.valid_len as usize, ends[0], "flipped byte {i}");
    }
    // Space the file system allocated but never filled reads as zeros.
    let mut zeroed = bytes.clone();
    zeroed.extend_from_slice(&[0u8; 64]);
    let r = wal::replay(&zeroed).unwrap();
    assert_eq!(r.valid_len as usize, bytes.len());
    assert_eq!(r.records, 2);
    // A length field pointing far past the end.
    let mut huge = bytes.clone();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&[0u8; 16]);
    assert_eq!(wal::replay(&huge).unwrap().valid_len as usize, bytes.len());
}

#[test]
fn a_record_with_a_good_crc_but_bad_content_is_refused() {
    // Sequence numbers that go backwards can only come from a bug; replay
    // must not guess.
    let (bytes, _) = image(&[vec![(5, token("a", 1))], vec![(3, token("b", 1))]]);
    assert!(matches!(
        wal::replay(&bytes),
        Err(LogError::BadRecord { .. })
    ));
    // Unknown entry kind, with a recomputed CRC.
    let (mut bytes, ends) = image(&[vec![(1, token("a", 1))]]);
    let kind_at = HEADER_LEN + RECORD_OVERHEAD + 4 + 8;
    bytes[kind_at] = 9;
    let crc = crc32fast::hash(&bytes[HEADER_LEN + RECORD_OVERHEAD..ends[0]]);
    bytes[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        wal::replay(&bytes),
        Err(LogError::BadRecord { .. })
    ));
}

#[tokio::test]
async fn store_recovers_from_a_torn_tail_and_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let exp = now() + 3600;
    let s = open(dir.path());
    s.append(vec![token("one", exp)]).await.unwrap();
    let c2 = s
        .append(vec![token("two", exp), subject("three", 5, exp)])
        .await
        .unwrap();
    s.close();
    let log = dir.path().join(LOG_FILE);
    let good_len = fs::metadata(&log).unwrap().len();

    // A crash in the middle of the next append: half a record on disk.
    let mut half = Vec::new();
    wal::encode_record([(4, &token("lost", exp))], &mut half);
    half.truncate(half.len() / 2);
    OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&half)
        .unwrap();

    let s = open(dir.path());
    assert_eq!(fs::metadata(&log).unwrap().len(), good_len, "tail cut");
    let torn: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("torn"))
        .collect();
    assert_eq!(torn.len(), 1, "the cut bytes are kept aside");
    assert_eq!(fs::read(torn[0].path()).unwrap(), half);
    assert_eq!(all_ids(&snapshot(&s)), ["one", "sub:three", "two"]);
    // The sequence continues after the last intact record: the cursor a
    // client got before the crash is still current.
    let r = FeedResponse::parse(&s.poll(Some(&c2), now(), false).unwrap().body).unwrap();
    assert!(!r.reset);
    assert_eq!(r.cursor, c2);
    let c4 = s.append(vec![token("four", exp)]).await.unwrap();
    assert_eq!(seq_of(&c4), 4);
    s.close();

    let s = open(dir.path());
    assert_eq!(all_ids(&snapshot(&s)), ["four", "one", "sub:three", "two"]);
    s.close();
}

#[tokio::test]
async fn compaction_drops_expired_entries_and_keeps_the_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let s = open(dir.path());
    let epoch = s.epoch().to_string();
    for i in 0..50 {
        s.append(vec![token(&format!("dead-{i}"), t - 7200)])
            .await
            .unwrap();
    }
    s.append(vec![token("alive", t + 3600), subject("u", 1, t + 3600)])
        .await
        .unwrap();
    let last = s.append(vec![token("dead-last", t - 7200)]).await.unwrap();
    let log = dir.path().join(LOG_FILE);
    let before = fs::metadata(&log).unwrap().len();
    let stats = s.maintain(t, false).await.unwrap().expect("compacted");
    assert_eq!((stats.kept, stats.dropped), (2, 51));
    let after = fs::metadata(&log).unwrap().len();
    assert!(after < before / 5, "{after} vs {before}");
    assert_eq!(stats.bytes, after);
    assert!(!dir.path().join(COMPACT_FILE).exists());
    // Nothing left to compact: the next pass is a no-op.
    assert_eq!(s.maintain(t, false).await.unwrap(), None);
    s.close();

    let s = open(dir.path());
    assert_eq!(s.epoch(), epoch, "compaction keeps the store identity");
    assert_eq!(all_ids(&snapshot(&s)), ["alive", "sub:u"]);
    // The newest entry was dropped, yet the sequence does not go back.
    let r = FeedResponse::parse(&s.poll(Some(&last), now(), false).unwrap().body).unwrap();
    assert!(!r.reset);
    let next = s.append(vec![token("new", t + 60)]).await.unwrap();
    assert_eq!(seq_of(&next), seq_of(&last) + 1);
    s.close();
}

#[tokio::test]
async fn compacting_everything_away_keeps_the_sequence_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let s = open(dir.path());
    let mut last = String::new();
    for i in 0..10 {
        last = s
            .append(vec![token(&format!("d{i}"), t - 7200)])
            .await
            .unwrap();
    }
    s.maintain(t, true).await.unwrap();
    s.close();
    let s = open(dir.path());
    assert!(snapshot(&s).revoked.is_empty());
    assert_eq!(snapshot(&s).cursor, last);
    let next = s.append(vec![token("x", t + 60)]).await.unwrap();
    assert_eq!(seq_of(&next), 11);
    s.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_runs_while_writes_continue() {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let s = open(dir.path());
    for b in 0..20 {
        let batch = (0..100)
            .map(|i| token(&format!("old-{b}-{i}"), t - 7200))
            .collect();
        s.append(batch).await.unwrap();
    }
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..300 {
                let id = format!("live-{i}");
                s.append(vec![token(&id, t + 3600)]).await.unwrap();
                acked.push(id);
            }
            acked
        })
    };
    for _ in 0..5 {
        s.maintain(t, true).await.unwrap();
    }
    let mut acked = writer.await.unwrap();
    s.maintain(t, true).await.unwrap();
    acked.sort();
    assert_eq!(all_ids(&snapshot(&s)), acked);
    s.close();
    let s = open(dir.path());
    assert_eq!(all_ids(&snapshot(&s)), acked);
    s.close();
}

#[tokio::test]
async fn an_interrupted_compaction_is_discarded_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.append(vec![token("a", now() + 60)]).await.unwrap();
    s.close();
    fs::write(dir.path().join(COMPACT_FILE), b"half written").unwrap();
    let s = open(dir.path());
    assert!(!dir.path().join(COMPACT_FILE).exists());
    assert_eq!(all_ids(&snapshot(&s)), ["a"]);
    s.close();
}

#[tokio::test]
async fn the_data_directory_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let second = EmbeddedStore::open(dir.path(), FeedLimits::default(), now());
    assert!(second.is_err_and(|e| e.0.contains("in use")));
    s.close();
    open(dir.path()).close();
}

#[tokio::test]
async fn a_damaged_header_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).close();
    let log = dir.path().join(LOG_FILE);
    let mut bytes = fs::read(&log).unwrap();
    bytes[3] ^= 0xff;
    fs::write(&log, &bytes).unwrap();
    let r = EmbeddedStore::open(dir.path(), FeedLimits::default(), now());
    assert!(r.is_err_and(|e| e.0.contains("header")));
}

#[tokio::test]
async fn an_empty_append_is_refused_and_leaves_the_log_alone() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    assert!(s.append(Vec::new()).await.is_err());
    s.append(vec![token("a", now() + 60)]).await.unwrap();
    s.close();
    let s = open(dir.path());
    assert_eq!(all_ids(&snapshot(&s)), ["a"]);
    s.close();
}

#[test]
fn scoped_entries_round_trip_and_unscoped_ones_keep_their_old_bytes() {
    let groups = vec![vec![
        (1, of("https://idp.example.com", token("a", 10))),
        (2, of("issuer with spaces é", subject("s p a c e", 5, 20))),
        (3, token("a", 10)),
        (4, of("B", token("a", 10))),
    ]];
    let (bytes, _) = image(&groups);
    let r = wal::replay(&bytes).unwrap();
    assert_eq!(r.entries, groups[0]);

    // Unscoped entries are written exactly as before issuers existed.
    let old = [(7, 1, 10, 0, "jti é"), (8, 2, 20, 5, "sub x")];
    let mut new = Vec::new();
    wal::encode_record(
        [(7, &token("jti é", 10)), (8, &subject("sub x", 5, 20))],
        &mut new,
    );
    assert_eq!(new, pre_issuer_record(&old));
    assert_eq!(
        &wal::encode_header(&Header {
            epoch: 9,
            base_seq: 3
        })[..],
        pre_issuer_header(9, 3)
    );

    // A scoped entry: kind 3 (jti) or 4 (sub), the issuer after the id.
    let mut rec = Vec::new();
    wal::encode_record([(1, &of("iss", subject("u", 2, 3)))], &mut rec);
    let entry = &rec[RECORD_OVERHEAD + 4..];
    assert_eq!(entry[8], 4);
    assert_eq!(&entry[25..29], &1u32.to_le_bytes());
    assert_eq!(&entry[29..30], b"u");
    assert_eq!(&entry[30..34], &3u32.to_le_bytes());
    assert_eq!(&entry[34..], b"iss");
}

#[test]
fn a_scoped_record_with_a_good_crc_but_a_bad_issuer_is_refused() {
    let mut rec = Vec::new();
    wal::encode_record([(1, &of("iss", token("a", 1)))], &mut rec);
    let payload = rec[RECORD_OVERHEAD..].to_vec();
    let iss_len_at = 4 + 25 + 4 + 1;
    let reseal = |payload: &[u8]| {
        let mut out = pre_issuer_header(1, 0);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        out.extend_from_slice(payload);
        out
    };
    let mut cases = Vec::new();
    // The issuer runs past the record.
    let mut long = payload.clone();
    long[iss_len_at..iss_len_at + 4].copy_from_slice(&4u32.to_le_bytes());
    cases.push(long);
    // An empty issuer, which the encoder never writes.
    let mut empty = payload[..iss_len_at].to_vec();
    empty.extend_from_slice(&0u32.to_le_bytes());
    cases.push(empty);
    // Not UTF-8.
    let mut binary = payload.clone();
    binary[iss_len_at + 4] = 0xff;
    cases.push(binary);
    // A scoped kind whose issuer is missing altogether.
    cases.push(payload[..iss_len_at].to_vec());
    for (i, case) in cases.iter().enumerate() {
        assert!(
            matches!(wal::replay(&reseal(case)), Err(LogError::BadRecord { .. })),
            "case {i}"
        );
    }
    assert_eq!(wal::replay(&reseal(&payload)).unwrap().records, 1);
}

#[tokio::test]
async fn a_log_written_before_issuers_opens_with_unscoped_entries() {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let exp = t + 3600;
    let mut log = pre_issuer_header(0xfeed_0001, 0);
    log.extend(pre_issuer_record(&[(1, 1, exp, 0, "old-jti")]));
    log.extend(pre_issuer_record(&[
        (2, 2, exp, t - 10, "old sub"),
        (3, 1, t - 7200, 0, "old-dead"),
    ]));
    fs::write(dir.path().join(LOG_FILE), &log).unwrap();

    let s = open(dir.path());
    assert_eq!(s.epoch(), "00000000feed0001");
    let snap = snapshot(&s);
    assert_eq!(
        scoped_ids(&snap),
        [pair("old-jti", None), pair("sub:old sub", None)]
    );
    let old_cursor = snap.cursor.clone();
    assert_eq!(seq_of(&old_cursor), 3);
    // The same jti for an issuer is an entry of its own, after the old ones.
    let c = s
        .append(vec![of("https://a.example", token("old-jti", exp))])
        .await
        .unwrap();
    assert_eq!(seq_of(&c), 4);
    let d = FeedResponse::parse(&s.poll(Some(&old_cursor), now(), false).unwrap().body).unwrap();
    assert_eq!(scoped_ids(&d), [pair("old-jti", Some("https://a.example"))]);
    s.close();

    // Replayed from the mixed log, then from its compacted form.
    let want = [
        pair("old-jti", None),
        pair("old-jti", Some("https://a.example")),
        pair("sub:old sub", None),
    ];
    let s = open(dir.path());
    assert_eq!(scoped_ids(&snapshot(&s)), want);
    let stats = s.maintain(t, true).await.unwrap().unwrap();
    assert_eq!((stats.kept, stats.dropped), (3, 1));
    s.close();
    let s = open(dir.path());
    assert_eq!(scoped_ids(&snapshot(&s)), want);
    assert_eq!(snapshot(&s).cursor, c);
    s.close();
}
