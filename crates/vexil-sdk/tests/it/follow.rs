//! Following a live server: changes and listeners, resuming after a cut
//! with only the missed changes, snapshots after an unknown version or a
//! log that does not reach back, polling while the stream path fails, and
//! versions that do not compile.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde_json::{Value, json};
use vexil_sdk::{
    Client, Context, ErrorKind, Followed, Follower, FollowerConfig, Origin, Reason, Seed, Status,
};
use vexil_test_support::TcpProxy;
use vexil_test_support::server::{FILE_SERVER_KEY, Server, file_server, sqlite};

use crate::support::{
    StreamBlocker, addr, bool_flag, describe, eventually, next, put_flag, replace_flag,
    server_version, setup, toggle,
};

#[tokio::test]
async fn follows_a_live_server_and_a_change_reaches_the_listeners() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let key = setup(&s).await;
    let client = Client::new(&s.base, &key).unwrap();
    // Added before the first version: told of it, every flag changed.
    let (first_tx, mut first) = tokio::sync::mpsc::unbounded_channel();
    client.on_change(move |c| {
        let _ = first_tx.send(c.clone());
    });
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    let v = server_version(&s).await;
    assert_eq!(client.version(), Some(v));
    let loaded = tokio::time::timeout(Duration::from_secs(5), first.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.version, v);
    assert_eq!(
        &*loaded.flags,
        ["checkout", "color", "limit"].map(String::from)
    );
    assert_eq!(client.status(), Status::Ready);
    let pro = Context::new().with_targeting_key("u1").with("plan", "pro");
    assert!(client.bool_value("checkout", &pro, false));
    assert_eq!(client.string_value("color", &pro, "x"), "#00f");
    assert_eq!(client.int_value("limit", &pro, 0), 10);

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let on_checkout = tx.clone();
    client.on_flag_change("checkout", move |c| {
        let _ = on_checkout.send(("checkout", c.clone()));
    });
    client.on_flag_change("color", move |c| {
        let _ = tx.send(("color", c.clone()));
    });
    let started = std::time::Instant::now();
    toggle(&s, "checkout", false).await;
    let (which, changed) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a listener call")
        .unwrap();
    assert_eq!(which, "checkout");
    assert_eq!(changed.version, v + 1);
    assert_eq!(&*changed.flags, ["checkout".to_owned()]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The listener ran after the version was swapped in.
    let d = client.bool_details("checkout", &pro, true);
    assert_eq!(
        (d.value, d.reason, d.version),
        (false, Reason::Disabled, Some(v + 1))
    );
    // The change was applied locally, and the document is the server's
    // byte for byte (an edge serves it under the same ETag).
    let served = s
        .http
        .get(s.url("/api/v1/snapshot"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(served.headers()["etag"], format!("\"{}\"", v + 1).as_str());
    let body = served.bytes().await.unwrap();
    let followed = client.followed().unwrap();
    assert_eq!(followed.version(), v + 1);
    assert_eq!(followed.json().unwrap().as_ref(), body.as_ref());
    // The other flag's listener was not called.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn a_cut_connection_resumes_with_only_the_missed_changes() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let key = setup(&s).await;
    let proxy = TcpProxy::start(addr(&s)).await;
    let client = Client::builder()
        .upstream(format!("http://{}", proxy.addr()), &key)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        // No polling in this test: what arrives comes by the stream.
        .poll_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    let follower = client.follower().unwrap();
    let mut updates = follower.updates();
    let v = server_version(&s).await;
    assert_eq!(describe(&next(&mut updates).await), ("snapshot", v));

    proxy.cut();
    eventually("the follower notices the cut", || {
        client.status() == Status::Stale
    })
    .await;
    toggle(&s, "checkout", false).await;
    toggle(&s, "checkout", true).await;
    put_flag(&s, "new", &bool_flag(true)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.version(), Some(v), "nothing arrives while cut");
    let reconnects = client.state().reconnects;
    assert!(reconnects >= 1);

    proxy.restore();
    let got: Vec<_> = vec![
        describe(&next(&mut updates).await),
        describe(&next(&mut updates).await),
        describe(&next(&mut updates).await),
    ];
    assert_eq!(
        got,
        [("change", v + 1), ("change", v + 2), ("change", v + 3)]
    );
    assert!(client.bool_value("new", &Context::new(), false));
    eventually("ready again", || client.status() == Status::Ready).await;
    // Nothing else travelled.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(50), updates.recv())
            .await
            .is_err()
    );
}

/// A follower started from a state of version `version` with `doc`.
fn follower_from(s: &Server, key: &str, version: i64, doc: Value) -> Follower {
    let seed = Seed {
        version,
        document: Bytes::from(doc.to_string()),
        keys: None,
    };
    let mut config = FollowerConfig::new(&s.base, key);
    config.initial = Some(Arc::new(Followed::from_seed(seed).unwrap()));
    Follower::start(config).unwrap()
}

#[tokio::test]
async fn an_unknown_version_or_one_the_log_has_lost_gets_a_snapshot() {
    let (data, _dir) = sqlite();
    let s = Server::start_with(&data, &["--stream-buffer", "2"]);
    let key = setup(&s).await;
    let v = server_version(&s).await;

    // A version the server never had (say, a cache from before its
    // database was replaced): the stream's snapshot is taken, though older.
    let f = follower_from(
        &s,
        &key,
        v + 100,
        json!({"flags": {"stale": bool_flag(true)}}),
    );
    let mut updates = f.updates();
    assert_eq!(describe(&next(&mut updates).await), ("snapshot", v + 100));
    assert_eq!(describe(&next(&mut updates).await), ("snapshot", v));
    let current = f.current().unwrap();
    assert_eq!(current.origin(), Origin::Upstream);
    assert!(current.snapshot().flag("stale").is_none());
    assert!(current.snapshot().flag("checkout").is_some());
    f.wait_ready(Duration::from_secs(5)).await.unwrap();

    // A version the server's log no longer reaches back to.
    let (_, _, first) = s
        .call(Method::GET, "/api/v1/snapshot", Some(&key), None, &[])
        .await;
    for on in [false, true, false, true] {
        toggle(&s, "checkout", on).await;
    }
    let again = follower_from(&s, &key, v, first);
    let mut updates = again.updates();
    assert_eq!(describe(&next(&mut updates).await), ("snapshot", v));
    assert_eq!(describe(&next(&mut updates).await), ("snapshot", v + 4));
}

#[tokio::test]
async fn polling_keeps_versions_coming_when_the_stream_path_fails() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let key = setup(&s).await;
    let proxy = StreamBlocker::start(addr(&s)).await;
    let client = Client::builder()
        .upstream(format!("http://{}", proxy.addr), &key)
        .backoff(Duration::from_millis(100), Duration::from_millis(500))
        .poll_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    // The download works, so the client is ready though the stream is not.
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    let v = server_version(&s).await;
    let mut updates = client.follower().unwrap().updates();
    assert_eq!(describe(&next(&mut updates).await), ("snapshot", v));

    toggle(&s, "checkout", false).await;
    assert_eq!(describe(&next(&mut updates).await), ("snapshot", v + 1));
    replace_flag(
        &s,
        "color",
        &json!({"variants": {"green": "#0f0"}, "defaultServe": {"variant": "green"}}),
    )
    .await;
    assert_eq!(describe(&next(&mut updates).await), ("snapshot", v + 2));
    assert_eq!(client.string_value("color", &Context::new(), "x"), "#0f0");
    let state = client.state();
    assert!(state.reconnects >= 2, "{state:?}");
    assert_eq!(
        state.status,
        Status::Ready,
        "polls keep it ready: {state:?}"
    );
    assert!(state.last_contact.is_some());
}

fn write_flags(file: &std::path::Path, flags: Value) {
    let doc = json!({"flags": flags});
    // Written whole and renamed, so the server's watcher never reads half.
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, doc.to_string()).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

#[tokio::test]
async fn a_version_that_does_not_compile_is_refused_and_the_last_good_one_serves() {
    let (s, file, _dir) = file_server(&[]);
    let blue = json!({"state": "ENABLED", "variants": {"red": "#f00", "blue": "#00f"}, "defaultVariant": "blue"});
    let red = json!({"state": "ENABLED", "variants": {"red": "#f00", "blue": "#00f"}, "defaultVariant": "red"});
    write_flags(&file, json!({"color": blue}));
    let client = Client::new(&s.base, FILE_SERVER_KEY).unwrap();
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    let ctx = Context::new();
    eventually("the file is served", || {
        client.string_value("color", &ctx, "x") == "#00f"
    })
    .await;
    let good = client.version().unwrap();

    // The server serves a flag file with an invalid flag (that flag
    // answers PARSE_ERROR there), but its snapshot does not compile.
    let broken = json!({"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "missing"});
    write_flags(&file, json!({"color": red, "broken": broken}));
    eventually("the broken version is refused", || {
        client.state().refused == 1
    })
    .await;
    let (_, _, answer) = s
        .call(
            Method::POST,
            "/ofrep/v1/evaluate/flags/broken",
            Some(FILE_SERVER_KEY),
            Some(&json!({"context": {}})),
            &[],
        )
        .await;
    assert_eq!(answer["errorCode"], "PARSE_ERROR", "{answer}");
    let state = client.state();
    assert_eq!(state.status, Status::Stale);
    assert_eq!(state.refused_version, Some(good + 1));
    let error = state.error.clone().unwrap();
    assert_eq!(error.kind(), ErrorKind::Invalid);
    assert!(error.message().contains("/flags/broken"), "{error}");
    // The last good version keeps serving, whole.
    assert_eq!(client.version(), Some(good));
    assert_eq!(client.string_value("color", &ctx, "x"), "#00f");
    let d = client.string_details("broken", &ctx, "d");
    assert_eq!(d.error_code, Some(vexil_sdk::ErrorCode::FlagNotFound));

    // The next version does not continue the one held: a download fixes it.
    write_flags(&file, json!({"color": red}));
    eventually("the fixed version is served", || {
        client.version() == Some(good + 2)
    })
    .await;
    assert_eq!(client.string_value("color", &ctx, "x"), "#f00");
    eventually("ready again", || client.status() == Status::Ready).await;
    let state = client.state();
    assert_eq!((state.refused, state.refused_version), (1, None));
    assert!(state.error.is_none(), "{state:?}");
}

#[tokio::test]
async fn a_silent_stream_is_taken_for_dead_and_heartbeats_keep_one_alive() {
    let (data, _dir) = sqlite();
    let beating = Server::start_with(&data, &["--heartbeat-ms", "100"]);
    let key = setup(&beating).await;
    let (quiet_data, _quiet_dir) = sqlite();
    let quiet = Server::start(&quiet_data); // heartbeats every 15 s
    let quiet_key = setup(&quiet).await;
    let client = |s: &Server, key: &str| {
        Client::builder()
            .upstream(&s.base, key)
            .stream_idle_timeout(Duration::from_millis(400))
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
            .build()
            .unwrap()
    };
    let alive = client(&beating, &key);
    let dead = client(&quiet, &quiet_key);
    alive.wait_ready(Duration::from_secs(10)).await.unwrap();
    dead.wait_ready(Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(alive.state().reconnects, 0, "{:?}", alive.state());
    let reconnects = dead.state().reconnects;
    assert!(reconnects >= 2, "{:?}", dead.state());
    // Each new stream resumes from the version held: still up to date.
    toggle(&quiet, "checkout", false).await;
    let v = server_version(&quiet).await;
    eventually("the change arrives", || dead.version() == Some(v)).await;
}

#[tokio::test]
async fn a_consumer_that_lags_is_resynchronised_with_a_snapshot() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let key = setup(&s).await;
    let mut config = FollowerConfig::new(&s.base, &key);
    config.updates_capacity = 2;
    let f = Follower::start(config).unwrap();
    f.wait_ready(Duration::from_secs(10)).await.unwrap();
    let v = server_version(&s).await;
    let mut slow = f.updates();
    let mut fast = f.updates();
    assert_eq!(describe(&next(&mut slow).await), ("snapshot", v));
    assert_eq!(describe(&next(&mut fast).await), ("snapshot", v));
    let mut seen = Vec::new();
    for i in 1..=5 {
        toggle(&s, "checkout", i % 2 == 0).await;
        seen.push(describe(&next(&mut fast).await));
    }
    let changes: Vec<_> = (1..=5).map(|i| ("change", v + i)).collect();
    assert_eq!(seen, changes, "a consumer that keeps up sees every change");
    // The slow one fell more than two updates behind: it gets the current
    // state, then nothing it already covers.
    assert_eq!(describe(&next(&mut slow).await), ("snapshot", v + 5));
    assert_eq!(slow.lagged(), 1);
    toggle(&s, "checkout", true).await;
    // Without room taken by what the snapshot covered: no second lag.
    assert_eq!(describe(&next(&mut slow).await), ("change", v + 6));
    assert_eq!(slow.lagged(), 1);
    f.shutdown().await;
    assert!(next_or_end(&mut slow).await.is_none());
}

async fn next_or_end(updates: &mut vexil_sdk::Updates) -> Option<vexil_sdk::Update> {
    tokio::time::timeout(Duration::from_secs(5), updates.recv())
        .await
        .expect("an answer within 5 s")
}

#[tokio::test]
async fn a_wrong_key_is_an_error_at_once() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    setup(&s).await;
    let client = Client::new(&s.base, "vxs_not-a-key-0123456789").unwrap();
    let started = std::time::Instant::now();
    let err = client
        .wait_ready(Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::Refused, "{err}");
    assert!(err.message().contains("401"), "{err}");
    assert_eq!(client.status(), Status::Error);
}

#[tokio::test]
async fn dropping_the_client_stops_its_follower_even_with_listeners() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let key = setup(&s).await;
    let client = Client::new(&s.base, &key).unwrap();
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    let weak = client.downgrade();
    client.on_change(move |_| {
        let _ = weak.upgrade().map(|c| c.version());
    });
    let mut updates = client.follower().unwrap().updates();
    let _ = next(&mut updates).await;
    drop(client);
    // The follower's task ended: its update stream closes.
    let end = tokio::time::timeout(Duration::from_secs(5), updates.recv())
        .await
        .expect("the update stream ends");
    assert!(end.is_none());
}

#[tokio::test]
async fn an_upstream_asking_to_retry_later_is_not_called_earlier() {
    // A real HTTP peer that answers every request with 503 and
    // `Retry-After: 1`, counting them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut conn, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = "HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    let mut config = FollowerConfig::new(&url, "vxs_some-key-0123456789");
    config.backoff_initial = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(20);
    config.poll_interval = Duration::from_millis(20);
    let follower = Follower::start(config).unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Without the header, back-off and polling would have called ~30 times.
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    eventually("the follower calls again after the second", || {
        calls.load(std::sync::atomic::Ordering::SeqCst) >= 2
    })
    .await;
    assert!(follower.current().is_none());
    follower.shutdown().await;
}

#[tokio::test]
async fn while_the_stream_fails_the_keys_are_polled_too() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let key = setup(&s).await;
    let proxy = StreamBlocker::start(addr(&s)).await;
    let client = Client::builder()
        .upstream(format!("http://{}", proxy.addr), &key)
        .backoff(Duration::from_millis(100), Duration::from_millis(500))
        .poll_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    let keys = |client: &Client| {
        client
            .followed()
            .and_then(|f| f.keys().map(|k| k.keys.len()))
            .unwrap_or(0)
    };
    // The stream never opens: the keys come from polling.
    eventually("the keys polled", || keys(&client) == 1).await;
    let followed = client.followed().unwrap();
    let event = followed.keys().unwrap();
    assert_eq!(
        (event.project.as_str(), event.environment.as_str()),
        ("default", "development")
    );
    // A key created upstream arrives by the next poll.
    crate::support::server_key(&s).await;
    eventually("the new key polled", || keys(&client) == 2).await;
}

fn rollout() -> Value {
    json!({"variants": {"a": "a", "b": "b", "c": "c"}, "defaultServe": {"rollout": {"weights": {"a": 34, "b": 33, "c": 33}}}})
}

/// The variant the engine gives `user` for [`rollout`] under `bucketing`.
fn rollout_variant(bucketing: &str, user: &str) -> String {
    let doc = json!({"bucketing": bucketing, "flags": {"r": rollout()}}).to_string();
    let compiled = vexil_engine::load(&doc, vexil_engine::Format::Native).unwrap();
    let ctx = Context::new().with_targeting_key(user);
    let e = compiled
        .snapshot
        .evaluate("r", &ctx, vexil_engine::ValueType::String);
    e.variant.unwrap().to_owned()
}

/// Issue 9: a change of the environment's bucketing reaches followers as
/// the whole environment (a change event names items only), live and on
/// a resume across it; later changes keep the bucketing.
#[tokio::test]
async fn a_bucketing_change_reaches_followers_as_a_snapshot() {
    use vexil_engine::model::Bucketing;
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let key = setup(&s).await;
    put_flag(&s, "r", &rollout()).await;
    let users: Vec<String> = (0..200)
        .map(|i| format!("user-{i}"))
        .filter(|u| rollout_variant("concat", u) != rollout_variant("cbor", u))
        .take(5)
        .collect();
    let client = Client::builder()
        .upstream(&s.base, &key)
        .poll_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    let follower = client.follower().unwrap();
    let mut updates = follower.updates();
    let v = server_version(&s).await;
    assert_eq!(describe(&next(&mut updates).await), ("snapshot", v));
    let (_, _, before) = s
        .call(Method::GET, "/api/v1/snapshot", Some(&key), None, &[])
        .await;

    let (st, _, env) = s
        .admin(
            Method::PATCH,
            crate::support::ENV,
            Some(&json!({"bucketing": "cbor"})),
            &[],
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::OK, "{env}");
    assert_eq!(describe(&next(&mut updates).await), ("snapshot", v + 1));
    let current = follower.current().unwrap();
    assert_eq!(current.document().bucketing, Bucketing::Cbor);
    for u in &users {
        let ctx = Context::new().with_targeting_key(u.as_str());
        assert_eq!(
            client.string_value("r", &ctx, "x"),
            rollout_variant("cbor", u),
            "{u}"
        );
    }
    toggle(&s, "checkout", false).await;
    assert_eq!(describe(&next(&mut updates).await), ("change", v + 2));
    assert_eq!(
        follower.current().unwrap().document().bucketing,
        Bucketing::Cbor
    );

    // A follower that held the version before resumes across the change.
    let resumed = follower_from(&s, &key, v, before);
    let mut updates = resumed.updates();
    assert_eq!(describe(&next(&mut updates).await), ("snapshot", v));
    assert_eq!(describe(&next(&mut updates).await), ("snapshot", v + 1));
    assert_eq!(describe(&next(&mut updates).await), ("change", v + 2));
    assert_eq!(
        resumed.current().unwrap().document().bucketing,
        Bucketing::Cbor
    );
}
