//! `FileStore`: one watched flag file, read-only, its changes versioned,
//! logged and announced.

use std::sync::Arc;
use std::time::Duration;

use vexil_engine::model::Bucketing;
use vexil_store::{ChangeFilter, ErrorKind, FileKeys, FileStore, ItemKind, Store};

fn keys() -> FileKeys {
    FileKeys {
        admin: "a".repeat(64),
        server: vec!["b".repeat(64)],
        client: vec![],
    }
}

#[tokio::test]
async fn a_flag_file_is_served_read_only_and_its_changes_are_announced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    let flag =
        r#"{"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}"#;
    std::fs::write(&path, format!(r#"{{"flags": {{"a": {flag}}}}}"#)).unwrap();
    let store = Arc::new(FileStore::open(&path, &keys(), 1).unwrap());
    let s: Arc<dyn Store> = store.clone();
    assert!(s.read_only());
    let env = s.environment("default", "default").await.unwrap();
    assert_eq!(env.version, 1);
    assert_eq!(s.load(env.id).await.unwrap().items.len(), 1);
    assert_eq!(s.keys_with_hashes().await.unwrap().len(), 2);
    let e = s.create_project("p", "P", 1).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ReadOnly);
    let e = s.commit(env.id, 1, "me", &[], 1).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ReadOnly);

    // The watcher picks up a change, versions it, logs it, announces it.
    let mut notices = s
        .change_notices()
        .expect("a file store announces its changes");
    store.watch(Duration::from_millis(50), std::sync::Arc::new(|| 2));
    std::fs::write(
        &path,
        format!(r#"{{"flags": {{"a": {flag}, "b": {flag}}}}}"#),
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(5), notices.changed())
        .await
        .expect("announced")
        .unwrap();
    assert_eq!(s.versions().await.unwrap(), vec![(env.id, 2)]);
    let log = s.changes(env.id, &ChangeFilter::default()).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!((log[0].key.as_str(), log[0].version), ("b", 2));

    // A file that no longer parses keeps the last good version.
    std::fs::write(&path, "{not json").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.versions().await.unwrap(), vec![(env.id, 2)]);
    s.close().await;
}

#[tokio::test]
async fn a_file_that_does_not_parse_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    std::fs::write(&path, "{nope").unwrap();
    let e = FileStore::open(&path, &keys(), 1).err().expect("refused");
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("invalid flag file"), "{e}");
    let e = FileStore::open(&dir.path().join("missing.json"), &keys(), 1)
        .err()
        .expect("refused");
    assert!(e.message.contains("cannot read flag file"), "{e}");
}

/// Issue 9: a flag file's own `bucketing` is its environment's setting; a
/// change of it alone is a new version with a `setting` log entry.
#[tokio::test]
async fn a_flag_files_bucketing_is_its_environments_setting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    let doc = |bucketing: &str| {
        format!(
            r#"{{"bucketing": "{bucketing}", "flags": {{"a": {{"variants": {{"on": true}}, "defaultServe": {{"variant": "on"}}}}}}}}"#
        )
    };
    std::fs::write(&path, doc("cbor")).unwrap();
    let store = FileStore::open(&path, &keys(), 1).unwrap();
    let env = store.environment("default", "default").await.unwrap();
    assert_eq!(env.bucketing, Bucketing::Cbor);
    assert_eq!(
        store.load(env.id).await.unwrap().env.bucketing,
        Bucketing::Cbor
    );
    std::fs::write(&path, doc("concat")).unwrap();
    assert!(store.refresh(2));
    let state = store.load(env.id).await.unwrap();
    assert_eq!(
        (state.env.version, state.env.bucketing),
        (2, Bucketing::Concat)
    );
    let log = store
        .changes(env.id, &ChangeFilter::default())
        .await
        .unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (log[0].kind, log[0].key.as_str(), log[0].after.clone()),
        (
            ItemKind::Setting,
            "bucketing",
            Some(serde_json::json!("concat").into())
        )
    );
}
