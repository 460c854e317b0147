//! Applying a 10k-entry revocation delta, as a worker does on its tick:
//! decode the shared-data record and insert into the set (goal: <= 20 ms
//! inside the proxy's wasm runtime; native figures are a lower bound).
//! Also the per-request lookup (on a held and on an empty set) and loading
//! a snapshot, as a worker that starts late or follows a reset does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, Criterion};
use jwt_auth_core::revocation::codec::{decode_batch, decode_batch_into, encode_batch};
use jwt_auth_core::revocation::set::{digest, Entry, RevocationSet};

fn bench(c: &mut Criterion) {
    let delta: Vec<Entry> = (0..10_000)
        .map(|i| Entry::Token {
            id: digest(&format!("jti-{i:08}")),
            exp: 1_900_000_000,
        })
        .collect();
    let bytes = encode_batch(2, delta.iter().copied());
    let mut base = RevocationSet::new();
    for i in 0..100_000 {
        base.insert(Entry::Token {
            id: digest(&format!("held-{i}")),
            exp: 1_900_000_000,
        });
    }
    // What a worker's replica does with each published delta
    // (`channel::Replica`): decode the record, then apply it as one batch.
    c.bench_function("apply 10k delta to a 100k set", |b| {
        b.iter_batched(
            || base.clone(),
            |mut set| {
                let batch = decode_batch(&bytes).unwrap();
                set.apply(&batch.entries);
                set
            },
            criterion::BatchSize::LargeInput,
        )
    });
    c.bench_function("is_revoked on a 110k set", |b| {
        let mut set = base.clone();
        decode_batch_into(&bytes, &mut set).unwrap();
        b.iter(|| set.is_revoked(Some("jti-00005000"), Some("user"), Some(1)))
    });
    c.bench_function("is_revoked on an empty set", |b| {
        let set = RevocationSet::new();
        b.iter(|| {
            set.is_revoked(
                std::hint::black_box(Some("jti-00005000")),
                Some("user"),
                Some(1),
            )
        })
    });
    let snapshot = encode_batch(3, base.entries());
    c.bench_function("load a 100k snapshot", |b| {
        b.iter(|| {
            let mut set = RevocationSet::new();
            decode_batch_into(&snapshot, &mut set).unwrap();
            set
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
