//! Acknowledged writes survive `kill -9`, and the change log has no gaps.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::{ENV, Server, backends, cleanup, flag_def};

/// Rounds of: concurrent writers, SIGKILL mid-stream, restart, check.
const ROUNDS: usize = 20;
const WRITERS: usize = 4;

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    for (data, _dir) in backends().await {
        let mut acknowledged: HashSet<String> = HashSet::new();
        for round in 0..ROUNDS {
            let s = Arc::new(Server::spawn(crate::BIN, &data, &[]));
            let stop = Arc::new(AtomicBool::new(false));
            let mut tasks = Vec::new();
            for w in 0..WRITERS {
                let (s, stop) = (s.clone(), stop.clone());
                tasks.push(tokio::spawn(async move {
                    let mut acked = Vec::new();
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("r{round}-w{w}-{i}");
                        let url = s.url(&format!("{ENV}/flags/{key}"));
                        let resp = s
                            .http
                            .put(url)
                            .bearer_auth(crate::support::ADMIN_KEY)
                            .header("if-none-match", "*")
                            .json(&flag_def(true))
                            .send()
                            .await;
                        match resp {
                            Ok(r) if r.status() == StatusCode::CREATED => acked.push(key),
                            // The server died mid-request: not acknowledged.
                            _ => break,
                        }
                        i += 1;
                    }
                    acked
                }));
            }
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            // SIGKILL while writes are in flight.
            let server = Arc::try_unwrap(s);
            stop.store(true, Ordering::Relaxed);
            match server {
                Ok(server) => server.kill9(),
                Err(shared) => {
                    let pid = shared.pid().expect("a process").to_string();
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", &pid])
                        .status();
                }
            }
            for t in tasks {
                acknowledged.extend(t.await.unwrap());
            }
        }
        let s = Server::spawn(crate::BIN, &data, &[]);
        let (st, _, env) = s.admin(Method::GET, ENV, None, &[]).await;
        assert_eq!(st, StatusCode::OK);
        let mut stored: HashSet<String> = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let q = after
                .as_ref()
                .map(|a| format!("&after={a}"))
                .unwrap_or_default();
            let (_, _, page) = s
                .admin(Method::GET, &format!("{ENV}/flags?limit=500{q}"), None, &[])
                .await;
            for item in page["items"].as_array().unwrap() {
                stored.insert(item["key"].as_str().unwrap().to_owned());
            }
            match page["next"].as_str() {
                Some(n) => after = Some(n.to_owned()),
                None => break,
            }
        }
        let lost: Vec<&String> = acknowledged.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "{data:?}: {} acknowledged writes lost: {lost:?}",
            lost.len()
        );
        assert!(
            acknowledged.len() > ROUNDS,
            "{data:?}: too few writes to mean anything ({})",
            acknowledged.len()
        );

        // The log has every version from 1 to the current one, once.
        let version = env["version"].as_i64().unwrap();
        let mut seen = Vec::new();
        let mut from = 0;
        loop {
            let (_, _, log) = s
                .admin(
                    Method::GET,
                    &format!("{ENV}/audit?after={from}&limit=1000"),
                    None,
                    &[],
                )
                .await;
            let items = log["items"].as_array().unwrap();
            if items.is_empty() {
                break;
            }
            seen.extend(items.iter().map(|c| c["version"].as_i64().unwrap()));
            from = *seen.last().unwrap();
        }
        // A write the killed server had already sent to PostgreSQL may
        // commit after the restarted server read its state, so the log may
        // end past `version` (never before it) — but never with a gap.
        let last = seen.last().copied().unwrap_or(0);
        assert!(
            last >= version,
            "{data:?}: the log ends at {last}, before the environment's version {version}"
        );
        assert_eq!(
            seen,
            (1..=last).collect::<Vec<_>>(),
            "{data:?}: change log has gaps"
        );
        eprintln!(
            "{data:?}: {} acknowledged writes over {ROUNDS} kill -9 rounds, all present; log 1..={last} without gaps",
            acknowledged.len()
        );
        let _: Option<Value> = None;
        drop(s);
        cleanup(&data).await;
    }
}
