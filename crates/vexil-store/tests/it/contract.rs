//! What every store must do.

use std::sync::Arc;

use serde_json::json;
use vexil_engine::model::Bucketing;
use vexil_store::{
    Action, BUCKETING_SETTING, ChangeFilter, ErrorKind, ItemKind, Mutation, NewKey, Scope,
};
use vexil_test_support::{TestStore, all};

fn flag(key: &str, on: bool) -> Mutation {
    Mutation {
        kind: ItemKind::Flag,
        key: key.into(),
        action: Action::Create,
        before: None,
        after: Some(
            json!({"variants": {"on": true, "off": false}, "enabled": on, "defaultServe": {"variant": "on"}})
                .into(),
        ),
        archived: false,
    }
}

async fn for_each_store<F, Fut>(test: F)
where
    F: Fn(TestStore) -> Fut,
    Fut: std::future::Future<Output = TestStore>,
{
    for t in all().await {
        let name = t.name;
        t.store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("{name}: migrate: {e}"));
        let t = test(t).await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn migrations_are_idempotent() {
    for_each_store(|t| async move {
        let v1 = t.store.migrate().await.unwrap();
        let v2 = t.store.migrate().await.unwrap();
        assert_eq!(v1, v2, "{}", t.name);
        assert!(v1 >= 1);
        t.store.ping().await.unwrap();
        t
    })
    .await;
}

#[tokio::test]
async fn projects_and_environments() {
    for_each_store(|t| async move {
        let s = &t.store;
        let p = s.create_project("shop", "Shop", 1).await.unwrap();
        assert_eq!(
            s.create_project("shop", "Again", 2).await.unwrap_err().kind,
            ErrorKind::AlreadyExists,
            "{}",
            t.name
        );
        assert_eq!(s.project("shop").await.unwrap(), p);
        assert_eq!(
            s.project("nope").await.unwrap_err().kind,
            ErrorKind::NotFound
        );
        let dev = s
            .create_environment(p.id, "development", "Development", 3)
            .await
            .unwrap();
        let prod = s
            .create_environment(p.id, "production", "Production", 4)
            .await
            .unwrap();
        assert_eq!((dev.version, dev.project_key.as_str()), (0, "shop"));
        assert_eq!(
            s.create_environment(p.id, "production", "x", 5)
                .await
                .unwrap_err()
                .kind,
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            s.environments(Some(p.id)).await.unwrap(),
            vec![dev.clone(), prod.clone()]
        );
        assert_eq!(s.environment("shop", "production").await.unwrap(), prod);
        assert_eq!(
            s.environment("shop", "staging").await.unwrap_err().kind,
            ErrorKind::NotFound
        );
        assert_eq!(s.projects().await.unwrap(), vec![p]);
        t
    })
    .await;
}

#[tokio::test]
async fn commits_are_versioned_logged_and_conflict_checked() {
    for_each_store(|t| async move {
        let s = &t.store;
        let p = s.create_project("p", "P", 1).await.unwrap();
        let env = s.create_environment(p.id, "dev", "Dev", 1).await.unwrap();
        let v1 = s
            .commit(env.id, 0, "alice", &[flag("a", true), flag("b", false)], 10)
            .await
            .unwrap();
        assert_eq!(v1, 1);
        // A write based on an old version changes nothing.
        let err = s
            .commit(env.id, 0, "bob", &[flag("c", true)], 11)
            .await
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict, "{}", t.name);
        let mut update = flag("a", false);
        update.action = Action::Toggle;
        update.before = flag("a", true).after;
        let v2 = s.commit(env.id, 1, "bob", &[update], 12).await.unwrap();
        assert_eq!(v2, 2);
        let delete = Mutation {
            kind: ItemKind::Flag,
            key: "b".into(),
            action: Action::Delete,
            before: flag("b", false).after,
            after: None,
            archived: false,
        };
        assert_eq!(
            s.commit(env.id, 2, "carol", &[delete], 13).await.unwrap(),
            3
        );

        let state = s.load(env.id).await.unwrap();
        assert_eq!(state.env.version, 3);
        let keys: Vec<(&str, i64)> = state
            .items
            .iter()
            .map(|i| (i.key.as_str(), i.version))
            .collect();
        assert_eq!(keys, [("a", 2)]);
        assert_eq!(
            state.items[0].definition.to_value()["enabled"],
            json!(false)
        );

        let log = s.changes(env.id, &ChangeFilter::default()).await.unwrap();
        let summary: Vec<(i64, &str, &str, Action)> = log
            .iter()
            .map(|c| (c.version, c.actor.as_str(), c.key.as_str(), c.action))
            .collect();
        assert_eq!(
            summary,
            [
                (1, "alice", "a", Action::Create),
                (1, "alice", "b", Action::Create),
                (2, "bob", "a", Action::Toggle),
                (3, "carol", "b", Action::Delete)
            ]
        );
        assert_eq!(
            log[2].before.as_ref().unwrap().to_value()["enabled"],
            json!(true)
        );
        assert_eq!(log[3].after, None);
        let only_a = s
            .changes(
                env.id,
                &ChangeFilter {
                    item: Some((ItemKind::Flag, "a".into())),
                    after_version: 1,
                    limit: 10,
                },
            )
            .await
            .unwrap();
        assert_eq!(only_a.len(), 1);
        assert_eq!(only_a[0].version, 2);
        assert_eq!(s.versions().await.unwrap(), [(env.id, 3)]);
        t
    })
    .await;
}

#[tokio::test]
async fn concurrent_writers_never_lose_a_change_and_leave_no_gaps() {
    for_each_store(|t| async move {
        let store = Arc::new(t.store.clone());
        let p = store.create_project("p", "P", 1).await.unwrap();
        let env = store
            .create_environment(p.id, "dev", "Dev", 1)
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for w in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    loop {
                        let based_on = store.load(env.id).await.unwrap().env.version;
                        match store
                            .commit(
                                env.id,
                                based_on,
                                &format!("w{w}"),
                                &[flag(&format!("f{w}-{i}"), true)],
                                1,
                            )
                            .await
                        {
                            Ok(_) => break,
                            Err(e) if e.kind == ErrorKind::Conflict => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let state = store.load(env.id).await.unwrap();
        assert_eq!(state.env.version, 80, "{}", t.name);
        assert_eq!(state.items.len(), 80);
        let log = store
            .changes(env.id, &ChangeFilter::default())
            .await
            .unwrap();
        let versions: Vec<i64> = log.iter().map(|c| c.version).collect();
        assert_eq!(versions, (1..=80).collect::<Vec<_>>());
        t
    })
    .await;
}

#[tokio::test]
async fn api_keys_are_stored_by_hash_and_revocable() {
    for_each_store(|t| async move {
        let s = &t.store;
        let p = s.create_project("p", "P", 1).await.unwrap();
        let env = s.create_environment(p.id, "dev", "Dev", 1).await.unwrap();
        let new = NewKey {
            name: "edge-eu".into(),
            hash: "ab".repeat(32),
            prefix: "vxs_abcd".into(),
            scope: Scope::Server,
            project_id: Some(p.id),
            environment_id: Some(env.id),
            now: 5,
        };
        let key = s.create_key(&new).await.unwrap();
        assert_eq!(
            (key.scope, key.environment_id, key.revoked_at),
            (Scope::Server, Some(env.id), None)
        );
        assert_eq!(
            s.create_key(&new).await.unwrap_err().kind,
            ErrorKind::AlreadyExists
        );
        assert_eq!(s.key_by_hash(&new.hash).await.unwrap(), Some(key.clone()));
        assert_eq!(s.key_by_hash("00").await.unwrap(), None);
        let revoked = s.revoke_key(key.id, 9).await.unwrap();
        assert_eq!(revoked.revoked_at, Some(9));
        assert_eq!(s.keys().await.unwrap(), vec![revoked]);
        assert_eq!(
            s.revoke_key(999, 9).await.unwrap_err().kind,
            ErrorKind::NotFound
        );
        t
    })
    .await;
}

// Issue 13, item 4: text PostgreSQL cannot hold (NUL) is refused the same
// way by every backend, and lookups by such a key find nothing.
#[tokio::test]
async fn nul_characters_are_refused_alike_everywhere() {
    for_each_store(|t| async move {
        let s = &t.store;
        let e = s.create_project("p", "a\0b", 1).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{}: {e}", t.name);
        assert_eq!(
            s.project("a\0b").await.unwrap_err().kind,
            ErrorKind::NotFound
        );
        let p = s.create_project("p", "P", 1).await.unwrap();
        let e = s.create_environment(p.id, "e", "x\0", 1).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{}: {e}", t.name);
        let env = s.create_environment(p.id, "e", "E", 1).await.unwrap();
        assert_eq!(
            s.environment("p", "e\0").await.unwrap_err().kind,
            ErrorKind::NotFound
        );
        let e = s
            .commit(env.id, 0, "who\0", &[flag("f", true)], 2)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid, "{}: {e}", t.name);
        let filter = ChangeFilter {
            item: Some((ItemKind::Flag, "f\0".into())),
            after_version: 0,
            limit: 10,
        };
        assert!(s.changes(env.id, &filter).await.unwrap().is_empty());
        assert_eq!(s.load(env.id).await.unwrap().env.version, 0, "{}", t.name);
        t
    })
    .await;
}

// Issue 12, item 13: a lookup in a project that does not exist says so,
// rather than that the environment is missing.
#[tokio::test]
async fn a_missing_project_is_named_as_such() {
    for_each_store(|t| async move {
        let e = t
            .store
            .environment("nope", "development")
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(
            e.message.contains("project `nope` not found"),
            "{}: {}",
            t.name,
            e.message
        );
        let p = t.store.create_project("p", "P", 1).await.unwrap();
        t.store.create_environment(p.id, "e", "E", 1).await.unwrap();
        let e = t.store.environment("p", "other").await.unwrap_err();
        assert!(
            e.message
                .contains("environment `other` not found in project `p`"),
            "{}",
            e.message
        );
        t
    })
    .await;
}

fn bucketing(value: serde_json::Value) -> Mutation {
    Mutation {
        kind: ItemKind::Setting,
        key: BUCKETING_SETTING.into(),
        action: Action::Update,
        before: Some(json!("concat").into()),
        after: Some(value.into()),
        archived: false,
    }
}

/// Issue 9: an environment's bucketing is a stored setting, changed by a
/// commit like any item (versioned, logged, never an item itself).
#[tokio::test]
async fn bucketing_is_a_versioned_and_logged_environment_setting() {
    for_each_store(|t| async move {
        let s = &t.store;
        let name = t.name;
        let p = s.create_project("p", "P", 1).await.unwrap();
        let env = s.create_environment(p.id, "dev", "Dev", 1).await.unwrap();
        s.create_environment(p.id, "prod", "Prod", 1).await.unwrap();
        assert_eq!(env.bucketing, Bucketing::Concat, "{name}");
        let v1 = s
            .commit(
                env.id,
                0,
                "alice",
                &[flag("a", true), bucketing(json!("cbor"))],
                10,
            )
            .await
            .unwrap();
        assert_eq!(v1, 1);
        let state = s.load(env.id).await.unwrap();
        assert_eq!(state.env.bucketing, Bucketing::Cbor, "{name}");
        assert_eq!(state.env.version, 1);
        assert_eq!(state.items.len(), 1, "{name}: a setting is not an item");
        assert_eq!(
            s.environment("p", "dev").await.unwrap().bucketing,
            Bucketing::Cbor
        );
        assert_eq!(
            s.environments(Some(p.id)).await.unwrap()[1],
            s.environment("p", "prod").await.unwrap()
        );
        assert_eq!(
            s.environment("p", "prod").await.unwrap().bucketing,
            Bucketing::Concat,
            "{name}: other environments keep theirs"
        );
        let log = s.changes(env.id, &ChangeFilter::default()).await.unwrap();
        let setting = log.iter().find(|c| c.kind == ItemKind::Setting).unwrap();
        assert_eq!(
            (setting.key.as_str(), setting.version, &setting.after),
            ("bucketing", 1, &Some(json!("cbor").into())),
            "{name}"
        );
        // Unknown settings and values are refused alike, and change nothing.
        for bad in [json!("murmur"), json!(1), serde_json::Value::Null] {
            let err = s
                .commit(env.id, 1, "bob", &[bucketing(bad)], 11)
                .await
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::Invalid, "{name}");
        }
        let mut unknown = bucketing(json!("cbor"));
        unknown.key = "colour".into();
        assert_eq!(
            s.commit(env.id, 1, "bob", &[unknown], 11)
                .await
                .unwrap_err()
                .kind,
            ErrorKind::Invalid
        );
        let v2 = s
            .commit(env.id, 1, "bob", &[bucketing(json!("concat"))], 12)
            .await
            .unwrap();
        assert_eq!(v2, 2, "{name}");
        assert_eq!(
            s.load(env.id).await.unwrap().env.bucketing,
            Bucketing::Concat
        );
        t
    })
    .await;
}

/// A large commit is written in multi-row statements; the result is that
/// of its mutations one after the other, the same item touched several
/// times included.
#[tokio::test]
async fn a_large_commit_applies_its_mutations_in_order() {
    for_each_store(|t| async move {
        let s = &t.store;
        let p = s.create_project("p", "P", 1).await.unwrap();
        let env = s.create_environment(p.id, "dev", "Dev", 1).await.unwrap();
        let delete = |key: &str| Mutation {
            kind: ItemKind::Flag,
            key: key.into(),
            action: Action::Delete,
            before: None,
            after: None,
            archived: false,
        };
        let mut mutations: Vec<Mutation> =
            (0..600).map(|i| flag(&format!("f{i:03}"), true)).collect();
        // Within one run: written twice, the second wins.
        mutations.push(flag("f001", false));
        // Deleted, then written again: it exists.
        mutations.push(delete("f002"));
        mutations.push(flag("f002", false));
        // Written, then deleted: it does not.
        mutations.push(flag("zz", true));
        mutations.push(delete("zz"));
        mutations.push(delete("f003"));
        let v = s.commit(env.id, 0, "alice", &mutations, 10).await.unwrap();
        assert_eq!(v, 1, "{}", t.name);
        let state = s.load(env.id).await.unwrap();
        assert_eq!(state.items.len(), 599, "{}", t.name);
        let def = |key: &str| {
            state
                .items
                .iter()
                .find(|i| i.key == key)
                .map(|i| i.definition.to_value()["enabled"].clone())
        };
        assert_eq!(def("f000"), Some(json!(true)), "{}", t.name);
        assert_eq!(def("f001"), Some(json!(false)), "{}", t.name);
        assert_eq!(def("f002"), Some(json!(false)), "{}", t.name);
        assert_eq!(def("f003"), None, "{}", t.name);
        assert_eq!(def("zz"), None, "{}", t.name);
        assert_eq!(def("f599"), Some(json!(true)), "{}", t.name);
        let log = s
            .changes(
                env.id,
                &ChangeFilter {
                    item: None,
                    after_version: 0,
                    limit: 1000,
                },
            )
            .await
            .unwrap();
        let keys: Vec<&str> = log.iter().map(|c| c.key.as_str()).collect();
        let expected: Vec<&str> = mutations.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, expected, "{}", t.name);
        t
    })
    .await;
}
