//! Two real `revocation-feed` processes on one real Redis, as behind an
//! Envoy cluster: a cursor one replica hands out is valid at the other, a
//! paged snapshot can hop between them, a write through one wakes a poll
//! held by the other, and losing the append subscription only slows the
//! wake-up down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{
    epoch_of, jtis, nonce, now, random_hex, random_key_base64, redis_server, FeedProcess,
    RedisServer,
};
use hyper::Method;
use revocation_feed::client::{HttpClient, HttpResponse};
use revocation_protocol::{
    poll_request_path, verify_bound_signature, FeedResponse, BINDING_HEADER,
};
use std::time::{Duration, Instant};

/// Fields drop in order: the servers go before their Redis.
struct Replicas {
    a: FeedProcess,
    b: FeedProcess,
    redis: RedisServer,
    key: Vec<u8>,
    read: String,
    admin: String,
    client: HttpClient,
}

impl Replicas {
    /// Two servers sharing one Redis (and one prefix), pages of `page`.
    fn start(page: usize) -> Replicas {
        let redis = redis_server();
        let (key, key_b64) = random_key_base64();
        let (read, admin) = (random_hex(32), random_hex(32));
        let page = page.to_string();
        let replica = || {
            FeedProcess::start(
                &["--redis", &redis.url(), "--max-entries-per-response", &page],
                &[
                    ("REVOCATION_FEED_READ_TOKEN", &read),
                    ("REVOCATION_FEED_ADMIN_TOKEN", &admin),
                    ("REVOCATION_FEED_HMAC_SECRET_BASE64", &key_b64),
                ],
            )
        };
        let (a, b) = (replica(), replica());
        Replicas {
            a,
            b,
            redis,
            key,
            read,
            admin,
            client: HttpClient::new(),
        }
    }

    async fn poll(
        &self,
        at: &FeedProcess,
        since: Option<&str>,
        nonce: &str,
        wait_ms: Option<u64>,
    ) -> HttpResponse {
        let url = format!(
            "{}{}",
            at.base,
            poll_request_path(revocation_protocol::REVOCATIONS_PATH, since, nonce, wait_ms)
        );
        let auth = format!("Bearer {}", self.read);
        let resp = self
            .client
            .request(Method::GET, &url, &[("authorization", &auth)], None)
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{:?}", resp.body);
        resp
    }

    /// A poll whose binding verifies for it, parsed; and the binding's epoch.
    async fn checked(&self, at: &FeedProcess, since: Option<&str>) -> (FeedResponse, String) {
        let n = nonce();
        let resp = self.poll(at, since, &n, None).await;
        let binding = verify_bound_signature(
            &self.key,
            resp.header(BINDING_HEADER),
            &resp.body,
            since.unwrap_or(""),
            &n,
        )
        .unwrap();
        (FeedResponse::parse(&resp.body).unwrap(), binding.epoch)
    }

    async fn revoke(&self, at: &FeedProcess, body: String) -> String {
        let auth = format!("Bearer {}", self.admin);
        let resp = self
            .client
            .request(
                Method::POST,
                &format!("{}/v1/revocations", at.base),
                &[("authorization", &auth)],
                Some(body.into_bytes()),
            )
            .await
            .unwrap();
        assert_eq!(resp.status, 201, "{:?}", resp.body);
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        v["cursor"].as_str().unwrap().to_string()
    }

    async fn metrics(&self, at: &FeedProcess) -> String {
        let resp = self
            .client
            .request(Method::GET, &format!("{}/metrics", at.base), &[], None)
            .await
            .unwrap();
        String::from_utf8(resp.body.to_vec()).unwrap()
    }
}

fn tok(jti: &str) -> String {
    format!(r#"{{"jti":"{jti}","exp":{}}}"#, now() + 3600)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_and_snapshot_pages_are_valid_on_either_replica() {
    let r = Replicas::start(2);
    let (first, epoch_a) = r.checked(&r.a, None).await;
    assert!(first.reset);
    // A cursor from A is continued by B, and the other way round: one data
    // set, one cursor space, one epoch.
    let (at_b, epoch_b) = r.checked(&r.b, Some(&first.cursor)).await;
    assert!(!at_b.reset && at_b.revoked.is_empty());
    assert_eq!(at_b.cursor, first.cursor);
    assert_eq!(epoch_a, epoch_b);
    assert_eq!(epoch_a, epoch_of(&first.cursor));
    let c1 = r.revoke(&r.a, tok("via-a")).await;
    let (d, _) = r.checked(&r.b, Some(&first.cursor)).await;
    assert!(!d.reset);
    assert_eq!(jtis(&d), ["via-a"]);
    assert_eq!(d.cursor, c1, "B serves up to the head A just wrote");
    let c2 = r.revoke(&r.b, tok("via-b")).await;
    let (d, _) = r.checked(&r.a, Some(&c1)).await;
    assert_eq!(jtis(&d), ["via-b"]);
    assert_eq!(d.cursor, c2);
    // A paged snapshot whose pages alternate between the replicas.
    let list: Vec<String> = (0..5).map(|i| tok(&format!("p{i}"))).collect();
    let head = r.revoke(&r.a, format!("[{}]", list.join(","))).await;
    let mut pages = Vec::new();
    let mut since: Option<String> = None;
    for hop in 0.. {
        let at = if hop % 2 == 0 { &r.a } else { &r.b };
        let (page, _) = r.checked(at, since.as_deref()).await;
        assert_eq!(page.reset, hop == 0, "page {hop}");
        since = Some(page.cursor.clone());
        let more = page.more;
        pages.push(page);
        if !more {
            break;
        }
        assert!(hop < 10, "pages never end");
    }
    assert!(pages.len() >= 3);
    let mut all: Vec<String> = pages.iter().flat_map(jtis).collect();
    all.sort();
    all.dedup();
    assert_eq!(all, ["p0", "p1", "p2", "p3", "p4", "via-a", "via-b"]);
    assert_eq!(pages.last().unwrap().cursor, head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_replica_wakes_a_poll_held_by_the_other() {
    let r = Replicas::start(1000);
    let (first, _) = r.checked(&r.a, None).await;
    let c0 = first.cursor;
    let n = nonce();
    let started = Instant::now();
    let held = {
        let url = format!(
            "{}{}",
            r.b.base,
            poll_request_path(
                revocation_protocol::REVOCATIONS_PATH,
                Some(&c0),
                &n,
                Some(20_000)
            )
        );
        let (client, auth) = (r.client.clone(), format!("Bearer {}", r.read));
        tokio::spawn(async move {
            let resp = client
                .request(Method::GET, &url, &[("authorization", &auth)], None)
                .await
                .unwrap();
            (resp, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!held.is_finished(), "B holds the poll");
    assert!(r
        .metrics(&r.b)
        .await
        .contains("revocation_feed_waiting_polls 1\n"));
    let writing = Instant::now();
    let c1 = r.revoke(&r.a, tok("from-a")).await;
    let (resp, answered) = held.await.unwrap();
    let after_write = answered - writing;
    eprintln!("replica B answered {after_write:?} after the write through A was sent");
    assert!(after_write < Duration::from_secs(1), "{after_write:?}");
    assert!(answered - started >= Duration::from_millis(400));
    verify_bound_signature(&r.key, resp.header(BINDING_HEADER), &resp.body, &c0, &n).unwrap();
    let d = FeedResponse::parse(&resp.body).unwrap();
    assert_eq!(jtis(&d), ["from-a"]);
    assert_eq!(d.cursor, c1);
    assert!(r
        .metrics(&r.b)
        .await
        .contains("revocation_feed_long_polls_total{outcome=\"woken\"} 1\n"));
    // A cursor beyond the shared head (as a Redis that lost its newest
    // writes would leave behind) is answered at once, with a snapshot.
    let future = format!("{}-99999999999999-0", epoch_of(&c1));
    let t = Instant::now();
    let n = nonce();
    let resp = r.poll(&r.b, Some(&future), &n, Some(20_000)).await;
    assert!(t.elapsed() < Duration::from_secs(1));
    let snap = FeedResponse::parse(&resp.body).unwrap();
    assert!(snap.reset);
    assert_eq!(snap.cursor, c1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_subscription_comes_back_and_held_polls_still_get_the_write() {
    let r = Replicas::start(1000);
    let (first, _) = r.checked(&r.a, None).await;
    let up = "revocation_feed_wakeups_up{store=\"redis\"} 1\n";
    assert!(r.metrics(&r.b).await.contains(up));
    let held = {
        let url = format!(
            "{}{}",
            r.b.base,
            poll_request_path(
                revocation_protocol::REVOCATIONS_PATH,
                Some(&first.cursor),
                &nonce(),
                Some(20_000)
            )
        );
        let (client, auth) = (r.client.clone(), format!("Bearer {}", r.read));
        tokio::spawn(async move {
            client
                .request(Method::GET, &url, &[("authorization", &auth)], None)
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Redis drops every subscriber connection (both replicas'), and a write
    // lands right after: whether B hears of it through its new subscription
    // or by re-reading Redis, the held poll gets it within a couple of
    // seconds, not at the end of its 20 s wait.
    let killed = r.redis.command("CLIENT KILL TYPE pubsub");
    assert_eq!(killed, ":2", "one subscription per replica");
    let writing = Instant::now();
    r.revoke(&r.a, tok("after-the-cut")).await;
    let resp = held.await.unwrap();
    let took = writing.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(
        jtis(&FeedResponse::parse(&resp.body).unwrap()),
        ["after-the-cut"]
    );
    // The subscription is back, and the loss was logged.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !r.metrics(&r.b).await.contains(up) {
        assert!(
            Instant::now() < deadline,
            "the subscription never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        r.b.log().contains("the append subscription was lost"),
        "{}",
        r.b.log()
    );
}
