//! Tests of `document`.

use serde_json::json;
use vexil_store::Action;

use super::*;

fn item(kind: ItemKind, key: &str, def: serde_json::Value, archived: bool) -> Arc<Item> {
    Arc::new(Item {
        kind,
        key: key.to_owned(),
        definition: def.into(),
        version: 1,
        archived,
        updated_at: 0,
    })
}

fn flag(on: bool) -> serde_json::Value {
    json!({"variants": {"on": true, "off": false}, "enabled": on, "offVariant": "off", "defaultServe": {"variant": "on"}})
}

fn mutation(
    kind: ItemKind,
    key: &str,
    after: Option<serde_json::Value>,
    archived: bool,
) -> Mutation {
    Mutation {
        kind,
        key: key.to_owned(),
        action: if after.is_some() {
            Action::Update
        } else {
            Action::Delete
        },
        before: None,
        after: after.map(Into::into),
        archived,
    }
}

#[test]
fn a_change_applied_to_the_document_equals_the_document_of_the_changed_items() {
    // In item order, as the write path holds them.
    let items = vec![
        item(ItemKind::Flag, "a", flag(true), false),
        item(ItemKind::Flag, "b", flag(true), false),
        item(ItemKind::Flag, "d", flag(false), true),
        item(ItemKind::Segment, "s", json!({"rules": []}), false),
    ];
    let doc = document_of(items.iter(), Bucketing::Concat).unwrap();
    assert_eq!(doc.flags.keys().collect::<Vec<_>>(), ["a", "b"]);
    let changes = [
        vec![mutation(ItemKind::Flag, "c", Some(flag(false)), false)],
        vec![mutation(ItemKind::Flag, "a", None, false)],
        vec![mutation(ItemKind::Flag, "b", Some(flag(false)), true)],
        vec![mutation(ItemKind::Flag, "d", Some(flag(true)), false)],
        vec![
            mutation(ItemKind::Flag, "z", Some(flag(true)), false),
            mutation(ItemKind::Flag, "b", None, false),
            mutation(ItemKind::Flag, "z", Some(flag(false)), false),
            mutation(ItemKind::Segment, "a", Some(json!({"rules": []})), false),
        ],
        vec![
            mutation(ItemKind::Segment, "s", None, false),
            mutation(ItemKind::Segment, "t", Some(json!({"rules": []})), false),
            mutation(ItemKind::Flag, "0", Some(flag(true)), false),
        ],
    ];
    for mutations in changes {
        let (after, doc_after) = apply(&items, &doc, &mutations, &Parsed::default(), 2, 7).unwrap();
        let order: Vec<_> = after.iter().map(|i| item_order(i.kind, &i.key)).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        // Every item is the old one, or the mutation's.
        for i in after.iter() {
            match mutations
                .iter()
                .rev()
                .find(|m| m.kind == i.kind && m.key == i.key)
            {
                Some(m) => assert_eq!(Some(&i.definition), m.after.as_ref()),
                None => assert!(items.iter().any(|old| Arc::ptr_eq(old, i))),
            }
        }
        let expected = document_of(after.iter(), Bucketing::Concat).unwrap();
        assert_eq!(
            serde_json::to_value(&doc_after).unwrap(),
            serde_json::to_value(&expected).unwrap(),
            "{mutations:?}"
        );
    }
}

#[test]
fn a_definition_that_does_not_parse_is_named() {
    let items = [item(ItemKind::Flag, "x", json!({"nope": 1}), false)];
    let e = document_of(items.iter(), Bucketing::Concat).unwrap_err();
    assert!(e.message.contains("`x`"), "{e}");
}

/// Issue 9: a bucketing setting changes the document, not the items.
#[test]
fn a_bucketing_setting_changes_the_document_only() {
    let items = vec![item(ItemKind::Flag, "a", flag(true), false)];
    let doc = document_of(items.iter(), Bucketing::Concat).unwrap();
    let set = Mutation {
        kind: ItemKind::Setting,
        key: vexil_store::BUCKETING_SETTING.to_owned(),
        action: Action::Update,
        before: Some(json!("concat").into()),
        after: Some(json!("cbor").into()),
        archived: false,
    };
    let (after, doc_after) = apply(&items, &doc, &[set], &Parsed::default(), 2, 7).unwrap();
    assert_eq!(*after, items);
    assert_eq!(doc_after.bucketing, Bucketing::Cbor);
    assert_eq!(doc_after.flags.len(), 1);
    // Other changes keep the document's bucketing.
    let (_, again) = apply(
        &items,
        &doc_after,
        &[mutation(ItemKind::Flag, "b", Some(flag(false)), false)],
        &Parsed::default(),
        3,
        8,
    )
    .unwrap();
    assert_eq!(again.bucketing, Bucketing::Cbor);
}

/// Issue 11: an import's definitions are parsed once, not again when
/// applied; only the very text they were written as is trusted.
#[test]
fn a_definition_parsed_already_is_taken_not_parsed_again() {
    let def = Definition::from(flag(true));
    let known = Arc::new(def.parse::<FlagDef>().unwrap());
    let parsed = Parsed {
        flags: vec![("a".to_owned(), def.clone(), known.clone())],
        segments: Vec::new(),
    };
    let same = Mutation {
        after: Some(def),
        ..mutation(ItemKind::Flag, "a", None, false)
    };
    let doc = apply_document(&Document::default(), &[same], &parsed).unwrap();
    assert!(Arc::ptr_eq(&doc.flags.shared()[0].1, &known));
    let equal = mutation(ItemKind::Flag, "a", Some(flag(true)), false);
    let doc = apply_document(&Document::default(), &[equal], &parsed).unwrap();
    assert!(!Arc::ptr_eq(&doc.flags.shared()[0].1, &known));
    assert_eq!(doc.flags.shared()[0].1, known);
}
