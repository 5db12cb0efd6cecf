//! Unit tests of the follower's task: URLs, versions of answers, and how
//! change events are accepted, skipped or found not to continue.

use serde_json::json;
use vexil_protocol::event::{Action, Change, ItemKind};

use super::*;

#[test]
fn upstream_urls_are_plain_http_base_urls() {
    assert_eq!(
        base_url("http://127.0.0.1:8080").unwrap(),
        "http://127.0.0.1:8080"
    );
    assert_eq!(base_url("http://h:1/vexil/").unwrap(), "http://h:1/vexil");
    for bad in [
        "https://flags.example.com",
        "ftp://h",
        "nope",
        "http://h/?a=1",
    ] {
        assert_eq!(
            base_url(bad).unwrap_err().kind(),
            ErrorKind::Config,
            "{bad}"
        );
    }
    assert!(base_url("https://h").unwrap_err().message().contains("TLS"));
}

#[test]
fn answers_name_their_version_by_header_or_etag() {
    let mut h = reqwest::header::HeaderMap::new();
    assert_eq!(version_of(&h), None);
    h.insert(ETAG, HeaderValue::from_static("\"12\""));
    assert_eq!(version_of(&h), Some(12));
    h.insert("x-vexil-version", HeaderValue::from_static("13"));
    assert_eq!(version_of(&h), Some(13));
}

fn task(
    initial: Option<Followed>,
) -> (Task, broadcast::Receiver<Sequenced>, watch::Receiver<State>) {
    let mut config = FollowerConfig::new("http://127.0.0.1:9", "key-0123456789abcdef");
    config.initial = initial.map(Arc::new);
    let current = Arc::new(Slot::new(config.initial.clone()));
    let (state_tx, state) = watch::channel(State::new(config.initial.clone()));
    let (updates, rx) = broadcast::channel(16);
    (
        Task::new(config, current, state_tx, updates).unwrap(),
        rx,
        state,
    )
}

fn upstream(version: i64) -> Followed {
    Followed::from_json(
        version,
        Origin::Upstream,
        Bytes::from_static(br#"{"flags":{}}"#),
        None,
    )
    .unwrap()
}

fn change(version: i64, definition: serde_json::Value) -> ChangeEvent {
    ChangeEvent {
        version,
        changes: vec![Change {
            kind: ItemKind::Flag,
            key: "f".into(),
            action: Action::Update,
            definition: Some(definition),
            archived: false,
        }],
    }
}

fn good() -> serde_json::Value {
    json!({"variants": {"on": true}, "defaultServe": {"variant": "on"}})
}

#[tokio::test]
async fn changes_apply_only_when_they_continue_the_version_held() {
    let (mut t, mut rx, state) = task(Some(upstream(5)));
    assert_eq!(t.accept_change(change(5, good())).await, Applied::Old);
    assert_eq!(t.accept_change(change(4, good())).await, Applied::Old);
    assert_eq!(t.accept_change(change(7, good())).await, Applied::Gap);
    assert_eq!(t.accept_change(change(6, good())).await, Applied::Accepted);
    assert_eq!(t.position(), Some(6));
    let sent = rx.recv().await.unwrap();
    assert!(matches!(sent.update, Update::Change { ref followed, .. } if followed.version() == 6));
    assert_eq!(state.borrow().followed.as_ref().unwrap().version(), 6);
    assert_eq!(t.current.load_full().unwrap().version(), 6);
}

#[tokio::test]
async fn a_refused_version_is_skipped_on_resume_and_the_next_one_is_a_gap() {
    let (mut t, _rx, state) = task(Some(upstream(1)));
    let bad = json!({"variants": {"on": true}, "defaultServe": {"variant": "missing"}});
    assert_eq!(t.accept_change(change(2, bad)).await, Applied::Refused);
    {
        let s = state.borrow();
        assert_eq!((s.refused, s.refused_version), (1, Some(2)));
        assert_eq!(s.followed.as_ref().unwrap().version(), 1);
        assert_eq!(s.error.as_ref().unwrap().kind(), ErrorKind::Invalid);
        assert_eq!(s.status, Status::Stale);
    }
    // Resumes after the refused version, which is not received again.
    assert_eq!(t.position(), Some(2));
    assert_eq!(t.accept_change(change(2, good())).await, Applied::Old);
    // The next version cannot be applied to a version not held.
    assert_eq!(t.accept_change(change(3, good())).await, Applied::Gap);
    // A snapshot settles it.
    t.install_snapshot(upstream(3));
    assert_eq!(t.position(), Some(3));
    assert_eq!(state.borrow().refused_version, None);
    assert!(state.borrow().error.is_none());
}

#[tokio::test]
async fn a_bootstrap_state_is_served_but_never_resumed_from() {
    let (mut t, _rx, state) = task(Some(Followed::bootstrap(r#"{"flags":{}}"#).unwrap()));
    assert_eq!(t.position(), None);
    assert_eq!(state.borrow().status, Status::Stale);
    assert_eq!(t.accept_change(change(1, good())).await, Applied::Gap);
}

#[tokio::test]
async fn keys_events_are_carried_into_the_state_served() {
    let (mut t, mut rx, state) = task(Some(upstream(1)));
    let keys = KeysEvent {
        project: "p".into(),
        environment: "e".into(),
        keys: Vec::new(),
    };
    t.accept_keys(keys.clone());
    t.accept_keys(keys.clone());
    assert!(matches!(rx.recv().await.unwrap().update, Update::Keys(_)));
    assert!(rx.try_recv().is_err(), "the same keys twice are one update");
    assert_eq!(
        state
            .borrow()
            .followed
            .as_ref()
            .unwrap()
            .keys()
            .map(|k| k.as_ref()),
        Some(&keys)
    );
    assert_eq!(t.accept_change(change(2, good())).await, Applied::Accepted);
    assert_eq!(
        t.held.as_ref().unwrap().keys().map(|k| k.as_ref()),
        Some(&keys)
    );
}
