//! Tests of `event`.

use serde_json::json;

use super::*;
use crate::sse::Decoder;

/// Decodes one encoded frame into an event.
fn event_of(bytes: &[u8]) -> Result<Event, Error> {
    let mut d = Decoder::new();
    d.feed(bytes);
    let frame = d.next_frame().unwrap().unwrap();
    assert!(d.next_frame().is_none());
    Event::from_frame(frame)
}

fn frame(id: Option<&str>, event: &str, data: &str) -> Frame {
    Frame {
        id: id.map(str::to_owned),
        event: event.to_owned(),
        data: data.to_owned(),
        retry: None,
    }
}

/// Decodes a frame that must be refused, and compares the message.
fn check_error(frame: Frame, expect: &str) {
    match Event::from_frame(frame) {
        Err(e) => assert_eq!(e.to_string(), expect),
        Ok(ev) => panic!("decoded {ev:?}, expected `{expect}`"),
    }
}

#[test]
fn a_change_round_trips() {
    let def = json!({"variants": {"on": true, "off": false}, "enabled": false});
    let items = [
        ChangedItem {
            kind: ItemKind::Flag,
            key: "checkout",
            action: Action::Toggle,
            definition: Some(&def),
            archived: false,
        },
        ChangedItem {
            kind: ItemKind::Flag,
            key: "old",
            action: Action::Archive,
            definition: Some(&def),
            archived: true,
        },
        ChangedItem {
            kind: ItemKind::Segment,
            key: "beta testers",
            action: Action::Delete,
            definition: None,
            archived: false,
        },
    ];
    let Event::Change(change) = event_of(&change_frame(42, &items)).unwrap() else {
        panic!("not a change");
    };
    assert_eq!(change.version, 42);
    let back: Vec<ChangedItem<'_>> = change.changes.iter().map(Change::as_item).collect();
    assert_eq!(back, items);
    let live: Vec<bool> = change.changes.iter().map(Change::is_live).collect();
    assert_eq!(live, [true, false, false]);
    // Encoding the decoded change again gives the same bytes.
    assert_eq!(change_frame(42, &back), change_frame(42, &items));
}

#[test]
fn a_snapshot_round_trips() {
    let doc: vexil_engine::Document = serde_json::from_value(json!({
        "metadata": {"team": "web"},
        "flags": {"a": {"variants": {"on": true, "off": false}, "defaultServe": {"variant": "on"}}}
    }))
    .unwrap();
    let json = serde_json::to_vec(&doc).unwrap();
    let Event::Snapshot(snap) = event_of(&snapshot_frame(9, &json)).unwrap() else {
        panic!("not a snapshot");
    };
    assert_eq!((snap.version, snap.document.as_bytes()), (9, &json[..]));
    assert_eq!(snap.document().unwrap(), doc);
}

#[test]
fn a_refetch_message_round_trips() {
    let Event::Refetch(refetch) = event_of(&refetch_frame(17)).unwrap() else {
        panic!("not a refetch");
    };
    assert_eq!(refetch.etag.as_deref(), Some("\"17\""));
    assert_eq!(refetch.version(), Some(17));
    // The etag is optional in OFREP; it need not be a version.
    let Ok(Event::Refetch(bare)) =
        Event::from_frame(frame(None, "message", r#"{"type":"refetchEvaluation"}"#))
    else {
        panic!("not a refetch");
    };
    assert_eq!((bare.etag.as_deref(), bare.version()), (None, None));
    let odd = RefetchEvent {
        etag: Some("W/\"x\"".into()),
    };
    assert_eq!(odd.version(), None);
}

#[test]
fn unknown_events_and_messages_are_passed_on() {
    for f in [
        frame(Some("1"), "patch", "{}"),
        frame(None, "message", r#"{"type":"configurationChanged"}"#),
    ] {
        assert_eq!(Event::from_frame(f.clone()).unwrap(), Event::Other(f));
    }
}

#[test]
fn malformed_events_are_refused_naming_the_problem() {
    check_error(
        frame(None, "snapshot", "{}"),
        "`snapshot` event without an id",
    );
    check_error(
        frame(Some("v1"), "snapshot", "{}"),
        "`snapshot` event has id `v1`, not a version number",
    );
    check_error(
        frame(Some(" 1"), "snapshot", "{}"),
        "`snapshot` event has id ` 1`, not a version number",
    );
    check_error(
        frame(Some("1"), "snapshot", "[]"),
        "`snapshot` event data is not a JSON object",
    );
    check_error(
        frame(None, "change", r#"{"version":1,"changes":[]}"#),
        "`change` event without an id",
    );
    check_error(
        frame(Some("2"), "change", r#"{"version":1,"changes":[]}"#),
        "`change` event has id 2 but carries version 1",
    );
    check_error(
        frame(Some("1"), "change", "{"),
        "`change` event data is invalid: EOF while parsing an object at line 1 column 1",
    );
    check_error(
        frame(Some("1"), "change", r#"{"version":1}"#),
        "`change` event data is invalid: missing field `changes` at line 1 column 13",
    );
    check_error(
        frame(
            Some("1"),
            "change",
            r#"{"version":1,"changes":[{"kind":"flag","key":"a","action":"rename"}]}"#,
        ),
        "`change` event data is invalid: unknown variant `rename`, expected one of `create`, `update`, `toggle`, `archive`, `restore`, `delete`, `copy`, `import` at line 1 column 66",
    );
    check_error(
        frame(None, "message", "refetch"),
        "`message` event data is invalid: expected value at line 1 column 1",
    );
    check_error(
        frame(None, "message", r#"{"etag":"1"}"#),
        "`message` event data is invalid: missing field `type` at line 1 column 12",
    );
}

#[test]
fn a_change_item_may_leave_out_definition_and_archived() {
    let Event::Change(change) = Event::from_frame(frame(
        Some("3"),
        "change",
        r#"{"version":3,"changes":[{"kind":"segment","key":"s","action":"delete","extra":1}]}"#,
    ))
    .unwrap() else {
        panic!("not a change");
    };
    assert_eq!(
        change.changes,
        [Change {
            kind: ItemKind::Segment,
            key: "s".into(),
            action: Action::Delete,
            definition: None,
            archived: false,
        }]
    );
}

#[test]
fn an_invalid_snapshot_document_is_reported_where_it_is_wrong() {
    let snap = SnapshotEvent {
        version: 1,
        document: r#"{"flags": {"a": {"variants": {}, "colour": 1}}}"#.into(),
    };
    let err = snap.document().unwrap_err();
    assert!(matches!(err, Error::InvalidDocument(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("snapshot document is invalid: "), "{msg}");
    assert!(msg.contains("unknown field `colour`"), "{msg}");
    assert!(msg.contains("/flags/a"), "{msg}");
}

#[test]
fn a_keys_event_round_trips_without_an_id() {
    let event = KeysEvent {
        project: "default".into(),
        environment: "production".into(),
        keys: vec![KeyHash {
            hash: "ab".repeat(32),
            scope: KeyScope::Client,
        }],
    };
    let frame = keys_frame(&event);
    let text = String::from_utf8(frame.clone()).unwrap();
    assert!(
        text.starts_with("event: keys\ndata: {\"project\":\"default\""),
        "{text}"
    );
    assert!(text.contains("\"scope\":\"client\""), "{text}");
    let mut decoder = Decoder::new();
    decoder.feed(&frame);
    let decoded = decoder.next_frame().unwrap().unwrap();
    assert_eq!(decoded.id, None);
    assert_eq!(Event::from_frame(decoded).unwrap(), Event::Keys(event));
}
