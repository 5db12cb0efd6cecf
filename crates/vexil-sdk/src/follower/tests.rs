//! Unit tests of `Updates`: order, and the resynchronisation of a
//! consumer that lags (once, however the channel keeps what it covers).

use bytes::Bytes;

use super::*;
use crate::followed::Origin;

fn followed(version: i64) -> Arc<Followed> {
    Arc::new(
        Followed::from_json(
            version,
            Origin::Upstream,
            Bytes::from_static(b"{\"flags\":{}}"),
            None,
        )
        .unwrap(),
    )
}

/// Publishes version `v` as update `seq`, the follower's way: state
/// first, then the channel.
fn publish(state: &watch::Sender<State>, tx: &broadcast::Sender<Sequenced>, seq: u64, v: i64) {
    let f = followed(v);
    state.send_modify(|s| {
        s.followed = Some(f.clone());
        s.seq = seq;
    });
    let _ = tx.send(Sequenced {
        seq,
        update: Update::Snapshot(f),
    });
}

fn version(u: Update) -> i64 {
    match u {
        Update::Snapshot(f) | Update::Change { followed: f, .. } => f.version(),
        _ => -1,
    }
}

#[tokio::test]
async fn a_lagging_consumer_gets_the_current_state_once_then_what_follows() {
    let (state_tx, state) = watch::channel(State::new(None));
    let (tx, _) = broadcast::channel(2);
    let mut updates = Updates {
        rx: tx.subscribe(),
        state,
        pending: None,
        peeked: None,
        seen: 0,
        lagged: 0,
    };
    publish(&state_tx, &tx, 1, 10);
    assert_eq!(version(updates.recv().await.unwrap()), 10);
    for (seq, v) in (2..=6).zip(11..) {
        publish(&state_tx, &tx, seq, v);
    }
    assert_eq!(version(updates.recv().await.unwrap()), 15);
    assert_eq!(updates.lagged(), 1);
    // Two more fill the channel's room: with the covered updates still in
    // it this would be a second lag.
    publish(&state_tx, &tx, 7, 16);
    publish(&state_tx, &tx, 8, 17);
    assert_eq!(version(updates.recv().await.unwrap()), 16);
    assert_eq!(version(updates.recv().await.unwrap()), 17);
    assert_eq!(updates.lagged(), 1);
    drop(tx);
    assert!(updates.recv().await.is_none());
}
