//! Redis store: any number of stateless feed replicas share one Redis.
//!
//! Keys (with the configurable prefix `P`, braced so that a Redis Cluster
//! would keep them in one slot):
//!
//! - `{P}:stream` — a Stream, one entry per revocation (`XADD *`) with one
//!   field `r` = `<kind> <exp> <before> <tail>` (kind `t` for a jti, `s` for
//!   a sub, tail `<id>`; kind `ti`/`si` for a jti/sub of one issuer, tail
//!   `<iss byte length> <iss> <id>`; the tail last since the id and the
//!   issuer may contain spaces). One field rather than four halves the Redis
//!   CPU an `XRANGE` costs. Stream IDs are the cursor positions:
//!   `XRANGE (<cursor> +` is the delta.
//! - `{P}:live` — a sorted set scored by `exp` holding every unexpired entry
//!   as `<kind> <exp> <before> <stream id> <tail>`; the source of reset
//!   snapshots, trimmed with `ZREMRANGEBYSCORE`. The stream ID makes every
//!   write its own member, so the same jti revoked twice, or for two
//!   issuers, is two members.
//! - `{P}:last` — the ID of the newest entry (kept even when the stream has
//!   been trimmed empty), the cursor of an up-to-date client.
//! - `{P}:trimmed` — the ID of the newest entry ever trimmed from the stream
//!   (`0-0` before the first trim). It only grows. A cursor below it may have
//!   missed trimmed entries and gets a reset; a cursor at or above it cannot
//!   have, since everything after it is still in the stream.
//! - `{P}:epoch` — random identity of this data set, the cursor's prefix; if
//!   Redis loses its data the epoch is re-created and every proxy resets.
//! - `{P}:floor` — the highest `exp` below which the live set has been
//!   trimmed (it only grows). Snapshot pages need it, see below.
//!
//! Kinds `t` and `s` are the encoding from before issuer scopes, unchanged:
//! an unscoped entry is stored exactly as before, and entries written before
//! issuers existed read as unscoped. A server that predates `ti`/`si` fails
//! the polls that would carry them (a malformed entry to it) rather than
//! serve them unscoped, so every replica sharing a Redis must be upgraded
//! before scoped entries are written.
//!
//! Snapshot pages (for a client that sent `paged=1`): a snapshot pinned at
//! stream ID `S` is every live-set member with a stream ID up to `S`; pages
//! walk the live set in its own order (score, then member), and a
//! continuation cursor `<epoch>-<S>~<exp>.<n>` says "the next page starts
//! after the first `n` members scored `exp`". A member written meanwhile may
//! sort before that point and shift the rest forward, which can only repeat
//! a member already sent (and newer members are left for the delta after
//! the last page, whose cursor is `<epoch>-<S>`). The only removal, trimming
//! by score, takes a whole score group at once; when `exp` is below the
//! floor the group may be gone, and the page starts after the score instead
//! of skipping `n` members of the next one. The choice and the read happen
//! in one script, so they see the same data.
//!
//! Every read and write is one Lua script, so each is atomic and costs one
//! round trip.
//!
//! Long polls: the append script also `PUBLISH`es the new head on the
//! channel `{P}:appended`. Each feed process holds one subscription to it
//! (one connection, whatever the number of waiting polls) and wakes its own
//! waiting polls, so a write through any replica wakes the polls held by
//! every replica. Pub/sub delivers nothing while the subscription is down;
//! the process then marks its wake-ups down (waiting polls re-read Redis
//! every second), reconnects with backoff, and wakes every waiting poll
//! once it is back, since a write may have gone unheard meanwhile.

use crate::backend::{
    live, page_cursor, random_u64, split_page_cursor, FeedLimits, Poll, SnapshotCache, StoreError,
};
use crate::wake::Wakeups;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::{Script, Value};
use revocation_protocol::{Revocation, RevokedSubject, RevokedToken};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

const APPEND_LUA: &str = r#"
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  redis.call('SET', KEYS[1], ARGV[1])
  epoch = ARGV[1]
end
local sid
for i = 3, #ARGV, 4 do
  sid = redis.call('XADD', KEYS[3], '*', 'r', ARGV[i] .. ' ' .. ARGV[i+1] .. ' ' .. ARGV[i+2] .. ' ' .. ARGV[i+3])
  redis.call('ZADD', KEYS[4], ARGV[i+1], ARGV[i] .. ' ' .. ARGV[i+1] .. ' ' .. ARGV[i+2] .. ' ' .. sid .. ' ' .. ARGV[i+3])
end
redis.call('SET', KEYS[2], sid)
redis.call('PUBLISH', ARGV[2], sid)
return {epoch, sid}
"#;

const TRIM_LUA: &str = r#"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local floor = tonumber(redis.call('GET', KEYS[4]) or '0')
if tonumber(ARGV[1]) > floor then
  redis.call('SET', KEYS[4], ARGV[1])
end
local trimmed = 0
if tonumber(ARGV[2]) > 0 then
  local newest = redis.call('XREVRANGE', KEYS[2], '(' .. ARGV[2] .. '-0', '-', 'COUNT', 1)
  if #newest > 0 then
    redis.call('SET', KEYS[3], newest[1][1])
    trimmed = redis.call('XTRIM', KEYS[2], 'MINID', ARGV[2] .. '-0')
  end
end
return trimmed
"#;

const PAGE_LUA: &str = r#"
local epoch = redis.call('GET', KEYS[1])
local last = redis.call('GET', KEYS[2])
local trimmed = redis.call('GET', KEYS[3])
local floor = tonumber(redis.call('GET', KEYS[4]) or '0')
local members
local after = 0
if floor > tonumber(ARGV[1]) then
  members = redis.call('ZRANGEBYSCORE', KEYS[5], '(' .. ARGV[1], '+inf', 'LIMIT', 0, ARGV[3])
  after = 1
else
  members = redis.call('ZRANGEBYSCORE', KEYS[5], ARGV[1], '+inf', 'LIMIT', ARGV[2], ARGV[3])
end
return {epoch, last, trimmed, after, members}
"#;

/// Redis store settings.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:pass@]host:port[/db]`.
    pub url: String,
    /// Key prefix; lets several feeds share one Redis.
    pub prefix: String,
    /// How long stream entries are kept for deltas; a proxy whose cursor is
    /// older gets a reset snapshot instead.
    pub history_seconds: u64,
}

struct Keys {
    epoch: String,
    last: String,
    trimmed: String,
    stream: String,
    live: String,
    floor: String,
    /// Pub/sub channel of appends (not a key: channels have no slot).
    appended: String,
}

/// The Redis store handle; cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    keys: Arc<Keys>,
    scripts: Arc<[Script; 3]>,
    snapshots: Arc<SnapshotCache>,
    building: Arc<tokio::sync::Mutex<()>>,
    limits: FeedLimits,
    history_seconds: u64,
    wakeups: Arc<Wakeups>,
    /// The subscription task; stopped when the last handle goes.
    listener: Arc<Listener>,
}

/// Aborts the subscription task when dropped.
struct Listener(tokio::task::JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Bounds on re-subscribing after the subscription is lost.
const RESUBSCRIBE_MIN: Duration = Duration::from_millis(100);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(5);
/// A subscription that does not answer a PING within `PING_TIMEOUT` (sent
/// every `PING_EVERY`) is taken for dead: a half-open TCP connection would
/// otherwise go unnoticed and silently stop the wake-ups.
const PING_EVERY: Duration = Duration::from_secs(15);
const PING_TIMEOUT: Duration = Duration::from_secs(5);

fn rerr(what: &str) -> impl Fn(redis::RedisError) -> StoreError + '_ {
    move |e| StoreError(format!("redis {what}: {e}"))
}

impl RedisStore {
    /// Connects (failing at once if Redis cannot be reached) and makes sure
    /// the data set has an epoch.
    pub async fn connect(cfg: &RedisConfig, limits: FeedLimits) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(cfg.url.as_str()).map_err(rerr("url"))?;
        // Bounded waits so a hung Redis turns into a 503 rather than a stuck
        // request; the manager reconnects by itself afterwards.
        let mcfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(5))
            .set_response_timeout(Duration::from_secs(10))
            .set_number_of_retries(3)
            .set_max_delay(2000);
        let conn = client
            .get_connection_manager_with_config(mcfg)
            .await
            .map_err(rerr("connect"))?;
        let p = &cfg.prefix;
        let appended = format!("{{{p}}}:appended");
        // Subscribed before the first poll can wait, so that no append goes
        // unheard once the server answers.
        let first = subscribe(&client, &appended)
            .await
            .map_err(rerr("subscribe"))?;
        let wakeups = Arc::new(Wakeups::new(true));
        let listener = Listener(tokio::spawn(listen(
            client,
            appended.clone(),
            first,
            wakeups.clone(),
        )));
        let store = RedisStore {
            conn,
            keys: Arc::new(Keys {
                epoch: format!("{{{p}}}:epoch"),
                last: format!("{{{p}}}:last"),
                trimmed: format!("{{{p}}}:trimmed"),
                stream: format!("{{{p}}}:stream"),
                live: format!("{{{p}}}:live"),
                floor: format!("{{{p}}}:floor"),
                appended,
            }),
            scripts: Arc::new([
                Script::new(APPEND_LUA),
                Script::new(TRIM_LUA),
                Script::new(PAGE_LUA),
            ]),
            snapshots: Arc::default(),
            building: Arc::default(),
            limits,
            history_seconds: cfg.history_seconds,
            wakeups,
            listener: Arc::new(listener),
        };
        store.health().await?;
        Ok(store)
    }

    /// Answers a poll. A delta is one MULTI (epoch, head, trim mark and the
    /// XRANGE after the cursor), checked here; anything else is a snapshot.
    /// Plain commands rather than a script: moving thousands of stream
    /// entries through Lua tables costs several times more Redis CPU.
    pub async fn poll(
        &self,
        since: Option<&str>,
        now: u64,
        paged: bool,
    ) -> Result<Poll, StoreError> {
        if let Some((base, pos)) = since.and_then(split_page_cursor) {
            if paged {
                if let Some(page) = self.continue_snapshot(base, pos, now).await? {
                    return Ok(page);
                }
                return self.first_page(now).await;
            }
            return self.snapshot(now).await;
        }
        let Some((c_epoch, c_id)) = since.and_then(parse_cursor) else {
            return self.fresh(now, paged).await;
        };
        let cap = self.limits.max_entries_per_response.max(1);
        let k = &self.keys;
        let mut pipe = self.epoch_and_head();
        pipe.cmd("GET")
            .arg(&k.trimmed)
            .cmd("XRANGE")
            .arg(&k.stream)
            .arg(format!("({}-{}", c_id.0, c_id.1))
            .arg("+")
            .arg("COUNT")
            .arg(cap);
        let (epoch, last, trimmed, items): (Option<String>, Option<String>, Option<String>, Value) =
            pipe.query_async(&mut self.conn.clone())
                .await
                .map_err(rerr("poll"))?;
        let last = last.unwrap_or_else(|| "0-0".into());
        let valid = cursor_is_current(epoch.as_deref(), c_epoch, &last, trimmed.as_deref(), c_id);
        let Some(epoch) = epoch.filter(|_| valid) else {
            return self.fresh(now, paged).await;
        };
        let bad = || StoreError("redis poll: unexpected XRANGE reply".into());
        let Value::Array(items) = items else {
            return Err(bad());
        };
        let full = items.len() >= cap;
        let grace = self.limits.grace_seconds;
        let mut entries = Vec::with_capacity(items.len());
        let mut last_id = None;
        for item in items {
            let (id, rev) = parse_stream_entry(item).ok_or_else(bad)?;
            last_id = Some(id);
            if live(&rev, now, grace) {
                entries.push(rev);
            }
        }
        // A full page means there may be more: point the cursor at the last
        // entry sent so the next poll continues from there.
        let head = parse_id(&last);
        let pos = match (full, last_id) {
            (true, Some(id)) => id,
            _ => last,
        };
        let more = paged && full && parse_id(&pos) < head;
        let cursor = format!("{epoch}-{pos}");
        Ok(Poll::encode(&epoch, cursor, false, more, entries.iter()))
    }

    /// A reset: whole, or its first page for a paged client.
    async fn fresh(&self, now: u64, paged: bool) -> Result<Poll, StoreError> {
        if paged {
            self.first_page(now).await
        } else {
            self.snapshot(now).await
        }
    }

    /// The first page of a snapshot pinned at the current head.
    async fn first_page(&self, now: u64) -> Result<Poll, StoreError> {
        let cap = self.limits.max_entries_per_response.max(1);
        let min_exp = now.saturating_sub(self.limits.grace_seconds);
        for _ in 0..3 {
            let (epoch, last, members) =
                self.read_live(min_exp, Some(cap), "snapshot page").await?;
            let Some(epoch) = epoch else {
                self.ensure_epoch().await?;
                continue;
            };
            let last = last.unwrap_or_else(|| "0-0".into());
            return self.snapshot_page(&epoch, &last, &members, (min_exp, 0), true, now);
        }
        Err(StoreError(
            "redis snapshot: the data set keeps losing its epoch".into(),
        ))
    }

    /// The page after `<base>~<exp>.<n>`, or None when the snapshot cannot
    /// be continued (another data set, a head behind it, or its stream
    /// history trimmed so that the delta after it would be lost).
    async fn continue_snapshot(
        &self,
        base: &str,
        pos: &str,
        now: u64,
    ) -> Result<Option<Poll>, StoreError> {
        let Some((c_epoch, pinned)) = parse_cursor(base) else {
            return Ok(None);
        };
        let Some((exp, skip)) = pos
            .split_once('.')
            .and_then(|(e, n)| Some((e.parse::<u64>().ok()?, n.parse::<u64>().ok()?)))
        else {
            return Ok(None);
        };
        let k = &self.keys;
        let cap = self.limits.max_entries_per_response.max(1);
        let (epoch, last, trimmed, after, members): (
            Option<String>,
            Option<String>,
            Option<String>,
            i64,
            Vec<String>,
        ) = self.scripts[2]
            .key(&k.epoch)
            .key(&k.last)
            .key(&k.trimmed)
            .key(&k.floor)
            .key(&k.live)
            .arg(exp)
            .arg(skip)
            .arg(cap)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(rerr("snapshot page"))?;
        let last = last.unwrap_or_else(|| "0-0".into());
        let valid = cursor_is_current(epoch.as_deref(), c_epoch, &last, trimmed.as_deref(), pinned);
        let Some(epoch) = epoch.filter(|_| valid) else {
            return Ok(None);
        };
        let start = if after == 1 {
            (exp, u64::MAX)
        } else {
            (exp, skip)
        };
        let pinned = format!("{}-{}", pinned.0, pinned.1);
        self.snapshot_page(&epoch, &pinned, &members, start, false, now)
            .map(Some)
    }

    /// Encodes one snapshot page from live-set members read from `start`
    /// (`(exp, n)`: members scored `exp` from the `n`-th on; `n` of
    /// `u64::MAX` when the read started after the score).
    fn snapshot_page(
        &self,
        epoch: &str,
        pinned: &str,
        members: &[String],
        start: (u64, u64),
        reset: bool,
        now: u64,
    ) -> Result<Poll, StoreError> {
        let cap = self.limits.max_entries_per_response.max(1);
        let grace = self.limits.grace_seconds;
        let limit = parse_id(pinned).unwrap_or((0, 0));
        let mut entries = Vec::with_capacity(members.len());
        let mut last_exp = None;
        let mut ties = 0u64;
        for m in members {
            let (sid, rev) = parse_member_sid(m)
                .ok_or_else(|| StoreError("redis snapshot: malformed live-set member".into()))?;
            let exp = rev.exp();
            if last_exp == Some(exp) {
                ties += 1;
            } else {
                last_exp = Some(exp);
                ties = 1;
            }
            if sid <= limit && live(&rev, now, grace) {
                entries.push(rev);
            }
        }
        let base = format!("{epoch}-{pinned}");
        let cursor = match last_exp {
            Some(exp) if members.len() >= cap => {
                let before = if exp == start.0 && start.1 != u64::MAX {
                    start.1
                } else {
                    0
                };
                page_cursor(&base, &format!("{exp}.{}", before + ties))
            }
            _ => base,
        };
        let more = members.len() >= cap;
        Ok(Poll::encode(epoch, cursor, reset, more, entries.iter()))
    }

    /// A reset snapshot: the unexpired members of the live set, served from
    /// the local cache while the head has not moved.
    async fn snapshot(&self, now: u64) -> Result<Poll, StoreError> {
        let k = &self.keys;
        let min_exp = now.saturating_sub(self.limits.grace_seconds);
        for _ in 0..3 {
            let (epoch, last): (Option<String>, Option<String>) = redis::pipe()
                .atomic()
                .cmd("GET")
                .arg(&k.epoch)
                .cmd("GET")
                .arg(&k.last)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(rerr("snapshot"))?;
            let Some(epoch) = epoch else {
                self.ensure_epoch().await?;
                continue;
            };
            let cursor = format!("{epoch}-{}", last.as_deref().unwrap_or("0-0"));
            if let Some(hit) = self.snapshots.get(&cursor, now) {
                return Ok(hit);
            }
            // One build at a time: when a fleet restarts, every proxy misses
            // at once; the others wait and then find the cache filled
            // instead of each pulling the whole set out of Redis.
            let _building = self.building.lock().await;
            if let Some(hit) = self.snapshots.get(&cursor, now) {
                return Ok(hit);
            }
            let (epoch, last, members) = self.read_live(min_exp, None, "snapshot").await?;
            let Some(epoch) = epoch else {
                continue;
            };
            let entries = members
                .iter()
                .map(|m| parse_member(m))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| StoreError("redis snapshot: malformed live-set member".into()))?;
            let cursor = format!("{epoch}-{}", last.as_deref().unwrap_or("0-0"));
            return Ok(self.snapshots.build(
                &epoch,
                cursor,
                self.limits.grace_seconds,
                entries.iter(),
            ));
        }
        Err(StoreError(
            "redis snapshot: the data set keeps losing its epoch".into(),
        ))
    }

    /// A MULTI that starts by reading the data set's epoch and the stream
    /// head: a cursor is judged against both, in the same state as what the
    /// commands added after them read.
    fn epoch_and_head(&self) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("GET")
            .arg(&self.keys.epoch)
            .cmd("GET")
            .arg(&self.keys.last);
        pipe
    }

    /// The epoch, the head and the live members with `exp >= min_exp` (the
    /// first `limit` of them in set order, or all), read in one MULTI so
    /// they describe the same state of the data set.
    async fn read_live(
        &self,
        min_exp: u64,
        limit: Option<usize>,
        what: &str,
    ) -> Result<(Option<String>, Option<String>, Vec<String>), StoreError> {
        let k = &self.keys;
        let mut pipe = self.epoch_and_head();
        pipe.cmd("ZRANGEBYSCORE")
            .arg(&k.live)
            .arg(min_exp)
            .arg("+inf");
        if let Some(limit) = limit {
            pipe.arg("LIMIT").arg(0).arg(limit);
        }
        pipe.query_async(&mut self.conn.clone())
            .await
            .map_err(rerr(what))
    }

    /// Gives a data set without an epoch (new, or flushed) a fresh one.
    async fn ensure_epoch(&self) -> Result<(), StoreError> {
        let _: Option<String> = redis::cmd("SET")
            .arg(&self.keys.epoch)
            .arg(new_epoch())
            .arg("NX")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(rerr("SET epoch"))?;
        Ok(())
    }

    /// Appends all entries atomically (one script); returns the cursor after
    /// them. Durable as far as Redis's own persistence settings make it.
    pub async fn append(&self, entries: Vec<Revocation>) -> Result<String, StoreError> {
        // An empty write has no stream ID to report; the admin API never
        // asks for one.
        if entries.is_empty() {
            return Err(StoreError("nothing to write".into()));
        }
        let k = &self.keys;
        let script = &self.scripts[0];
        let mut inv = script.key(&k.epoch);
        inv.key(&k.last)
            .key(&k.stream)
            .key(&k.live)
            .arg(new_epoch())
            .arg(&k.appended);
        for r in &entries {
            let (kind, exp, before, tail) = encode_entry(r);
            inv.arg(kind).arg(exp).arg(before).arg(tail.as_ref());
        }
        let v: Value = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(rerr("append"))?;
        let bad = || StoreError("redis append: unexpected reply shape".into());
        let Value::Array(parts) = v else {
            return Err(bad());
        };
        match parts.as_slice() {
            [epoch, sid] => {
                let (e, s) = (text(epoch).ok_or_else(bad)?, text(sid).ok_or_else(bad)?);
                Ok(format!("{e}-{s}"))
            }
            _ => Err(bad()),
        }
    }

    /// Drops expired entries from the snapshot set and stream entries older
    /// than the history window. Safe to run from every replica at once.
    pub async fn maintain(&self, now: u64) -> Result<u64, StoreError> {
        let min_exp = now.saturating_sub(self.limits.grace_seconds);
        let floor_ms = now
            .saturating_sub(self.history_seconds)
            .saturating_mul(1000);
        let k = &self.keys;
        let trimmed: i64 = self.scripts[1]
            .key(&k.live)
            .key(&k.stream)
            .key(&k.trimmed)
            .key(&k.floor)
            .arg(min_exp)
            .arg(floor_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(rerr("trim"))?;
        Ok(u64::try_from(trimmed).unwrap_or(0))
    }

    /// Entries in the snapshot set (expired ones included until trimmed).
    pub async fn held(&self) -> Result<u64, StoreError> {
        let n: u64 = redis::cmd("ZCARD")
            .arg(&self.keys.live)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(rerr("ZCARD"))?;
        Ok(n)
    }

    /// Notified when any replica appends (through the subscription).
    pub fn wakeups(&self) -> &Wakeups {
        &self.wakeups
    }

    /// Stops the subscription (other handles of this store stop waking).
    pub fn close(self) {
        self.listener.0.abort();
        self.wakeups.set_up(false);
    }

    /// PINGs Redis.
    pub async fn health(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(rerr("PING"))?;
        Ok(())
    }
}

/// A pub/sub connection subscribed to `channel`, or an error within
/// `PING_TIMEOUT` (a Redis that hangs must not stall re-subscribing).
async fn subscribe(client: &redis::Client, channel: &str) -> redis::RedisResult<PubSub> {
    let open = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok(pubsub)
    };
    tokio::time::timeout(PING_TIMEOUT, open)
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::IoError, "no answer")))?
}

/// The subscription task: wakes this process's waiting polls on every
/// append, and keeps a subscription open for as long as the store lives.
async fn listen(client: redis::Client, channel: String, first: PubSub, wakeups: Arc<Wakeups>) {
    let mut pubsub = Some(first);
    let mut backoff = RESUBSCRIBE_MIN;
    loop {
        if let Some(open) = pubsub.take() {
            wakeups.set_up(true);
            // Appends made while no subscription was open went unheard.
            wakeups.notify();
            let why = forward(open, &wakeups).await;
            wakeups.set_up(false);
            // Waiting polls switch to re-reading Redis on a timer.
            wakeups.notify();
            log::warn!(
                "redis: the append subscription was lost ({why}); long polls re-read Redis every second until it is back"
            );
            backoff = RESUBSCRIBE_MIN;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RESUBSCRIBE_MAX);
        match subscribe(&client, &channel).await {
            Ok(open) => {
                log::info!("redis: the append subscription is back");
                pubsub = Some(open);
            }
            Err(e) => log::debug!("redis: subscribing again failed: {e}"),
        }
    }
}

/// Wakes the waiting polls for every message until the subscription fails;
/// returns why it did.
async fn forward(pubsub: PubSub, wakeups: &Wakeups) -> String {
    let (mut sink, mut messages) = pubsub.split();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            msg = messages.next() => match msg {
                Some(_) => wakeups.notify(),
                None => return "connection closed".into(),
            },
            _ = ping.tick() => {
                match tokio::time::timeout(PING_TIMEOUT, sink.ping::<Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return e.to_string(),
                    Err(_) => return "no answer to PING".into(),
                }
            }
        }
    }
}

/// A candidate epoch, used by a script only when the data set has none.
fn new_epoch() -> String {
    format!("{:016x}", random_u64())
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn into_text(v: Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A stream ID `ms-seq` as a comparable pair.
/// Whether a cursor at stream position `id` of data set `c_epoch` can still
/// be served exactly: same data set, not ahead of the head `last` (a cursor
/// from the future means this data set is not the one the client followed),
/// and not before the newest trimmed entry (it could have missed it).
fn cursor_is_current(
    epoch: Option<&str>,
    c_epoch: &str,
    last: &str,
    trimmed: Option<&str>,
    id: (u64, u64),
) -> bool {
    epoch == Some(c_epoch)
        && matches!(
            (parse_id(last), parse_id(trimmed.unwrap_or("0-0"))),
            (Some(l), Some(t)) if id <= l && id >= t
        )
}

fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// `<epoch>-<ms>-<seq>`. A sequence of u64::MAX is refused because XRANGE
/// cannot start after it.
fn parse_cursor(c: &str) -> Option<(&str, (u64, u64))> {
    let (epoch, id) = c.split_once('-')?;
    let id = parse_id(id)?;
    (!epoch.is_empty() && id.1 < u64::MAX).then_some((epoch, id))
}

/// Kind, `exp`, `before` and tail of an entry, as the append script joins
/// them into the stream field and the live-set member (see the module docs).
fn encode_entry(r: &Revocation) -> (&'static str, u64, u64, Cow<'_, str>) {
    let (kind, scoped_kind, exp, before, id) = match r {
        Revocation::Token(t) => ("t", "ti", t.exp, 0, &t.jti),
        Revocation::Subject(s) => ("s", "si", s.exp, s.before, &s.sub),
    };
    match r.iss() {
        None => (kind, exp, before, Cow::Borrowed(id.as_str())),
        Some(iss) => (
            scoped_kind,
            exp,
            before,
            Cow::Owned(format!("{} {iss} {id}", iss.len())),
        ),
    }
}

/// `<kind> <exp> <before> <stream id> <tail>`; the tail goes last because it
/// may contain spaces.
fn parse_member(m: &str) -> Option<Revocation> {
    parse_member_sid(m).map(|(_, r)| r)
}

/// [`parse_member`] with the member's stream ID.
fn parse_member_sid(m: &str) -> Option<((u64, u64), Revocation)> {
    let mut it = m.splitn(5, ' ');
    let kind = it.next()?;
    let exp: u64 = it.next()?.parse().ok()?;
    let before: u64 = it.next()?.parse().ok()?;
    let sid = parse_id(it.next()?)?;
    Some((sid, make(kind, it.next()?, exp, before)?))
}

/// The entry of kind `kind` with tail `tail` (see [`encode_entry`]).
fn make(kind: &str, tail: &str, exp: u64, before: u64) -> Option<Revocation> {
    let (iss, id) = match kind {
        "t" | "s" => (None, tail),
        "ti" | "si" => {
            let (iss, id) = split_scoped_tail(tail)?;
            (Some(iss.to_string()), id)
        }
        _ => return None,
    };
    let id = id.to_string();
    Some(match kind {
        "t" | "ti" => Revocation::Token(RevokedToken { jti: id, iss, exp }),
        _ => Revocation::Subject(RevokedSubject {
            sub: id,
            iss,
            before,
            exp,
        }),
    })
}

/// `<iss byte length> <iss> <id>` split into issuer and id; None when the
/// length does not fit the text or the issuer is empty.
fn split_scoped_tail(tail: &str) -> Option<(&str, &str)> {
    let (len, rest) = tail.split_once(' ')?;
    let len: usize = len.parse().ok()?;
    let iss = rest.get(..len).filter(|iss| !iss.is_empty())?;
    let id = rest.get(len..)?.strip_prefix(' ')?;
    Some((iss, id))
}

/// One XRANGE item: `[id, ["r", "<kind> <exp> <before> <tail>"]]`.
fn parse_stream_entry(v: Value) -> Option<(String, Revocation)> {
    let Value::Array(pair) = v else { return None };
    let mut pair = pair.into_iter();
    let (id, Value::Array(fields)) = (pair.next()?, pair.next()?) else {
        return None;
    };
    let mut fields = fields.into_iter();
    while let (Some(k), Some(v)) = (fields.next(), fields.next()) {
        if text(&k).as_deref() == Some("r") {
            let r = into_text(v)?;
            let mut it = r.splitn(4, ' ');
            let kind = it.next()?;
            let exp: u64 = it.next()?.parse().ok()?;
            let before: u64 = it.next()?.parse().ok()?;
            let rev = make(kind, it.next()?, exp, before)?;
            return Some((into_text(id)?, rev));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(jti: &str, iss: Option<&str>) -> Revocation {
        Revocation::Token(RevokedToken {
            jti: jti.into(),
            iss: iss.map(str::to_string),
            exp: 7,
        })
    }

    fn subject(sub: &str, iss: Option<&str>) -> Revocation {
        Revocation::Subject(RevokedSubject {
            sub: sub.into(),
            iss: iss.map(str::to_string),
            before: 3,
            exp: 7,
        })
    }

    /// The live-set member the append script makes of an entry.
    fn member(r: &Revocation, sid: &str) -> String {
        let (kind, exp, before, tail) = encode_entry(r);
        format!("{kind} {exp} {before} {sid} {tail}")
    }

    #[test]
    fn entries_round_trip_through_members() {
        for r in [
            token("a", None),
            token("with spaces", None),
            token("a", Some("https://idp.example.com")),
            token("1 x", Some("9 spaced issuer 12")),
            token("é", Some("ü")),
            subject("alice", None),
            subject("alice smith", Some("B")),
        ] {
            let m = member(&r, "1700000000000-3");
            assert_eq!(parse_member_sid(&m), Some(((1700000000000, 3), r)), "{m}");
        }
    }

    #[test]
    fn member_encodings_are_pinned() {
        assert_eq!(member(&token("a b", None), "5-0"), "t 7 0 5-0 a b");
        assert_eq!(member(&subject("u", None), "5-0"), "s 7 3 5-0 u");
        assert_eq!(
            member(&token("a b", Some("I s")), "5-0"),
            "ti 7 0 5-0 3 I s a b"
        );
        assert_eq!(member(&subject("u", Some("é")), "5-0"), "si 7 3 5-0 2 é u");
    }

    #[test]
    fn malformed_scoped_tails_are_refused() {
        for tail in [
            "", "3", "3 ab", "x ab c", "0  c", "4 abc", "2 é", "1 ab c", "-1 a b",
        ] {
            assert_eq!(make("ti", tail, 7, 0), None, "tail {tail:?}");
        }
        assert_eq!(make("x", "a", 7, 0), None);
        // Unscoped kinds take the tail as the id, whatever it holds.
        assert_eq!(make("t", "3 ab c", 7, 0), Some(token("3 ab c", None)));
    }
}
