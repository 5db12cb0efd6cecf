//! Tests of `sse`.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::event::{Action, ChangedItem, ItemKind, change_frame, refetch_frame, snapshot_frame};

// What the server wrote before this crate (vexil-server at 673518c,
// `state.rs` and `api/eval.rs`), kept to compare bytes with.

fn change_frame_before(version: i64, items: &[ChangedItem<'_>]) -> Vec<u8> {
    let data = serde_json::to_string(&serde_json::json!({"version": version, "changes": items}))
        .unwrap_or_default();
    format!("id: {version}\nevent: change\ndata: {data}\n\n").into_bytes()
}

fn snapshot_frame_before(version: i64, document: &[u8]) -> Vec<u8> {
    let mut frame = format!("id: {version}\nevent: snapshot\ndata: ").into_bytes();
    frame.extend_from_slice(document);
    frame.extend_from_slice(b"\n\n");
    frame
}

fn refetch_frame_before(version: i64) -> Vec<u8> {
    let data = serde_json::json!({"type": "refetchEvaluation", "etag": format!("\"{}\"", version)});
    format!("event: message\ndata: {data}\n\n").into_bytes()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

#[test]
fn a_change_frame_is_written_as_before() {
    let def = json!({"variants": {"on": true, "off": false}, "description": "a \"quoted\"\nline", "w": 0.1});
    let created = ChangedItem {
        kind: ItemKind::Flag,
        key: "checkout",
        action: Action::Create,
        definition: Some(&def),
        archived: false,
    };
    let deleted = ChangedItem {
        kind: ItemKind::Segment,
        key: "beta",
        action: Action::Delete,
        definition: None,
        archived: false,
    };
    let archived = ChangedItem {
        kind: ItemKind::Flag,
        key: "é/ü",
        action: Action::Archive,
        definition: Some(&def),
        archived: true,
    };
    let frame = change_frame(12, &[created, deleted]);
    assert_eq!(
        text(&frame),
        concat!(
            "id: 12\nevent: change\ndata: ",
            r#"{"version":12,"changes":["#,
            r#"{"kind":"flag","key":"checkout","action":"create","definition":{"variants":{"on":true,"off":false},"description":"a \"quoted\"\nline","w":0.1},"archived":false},"#,
            r#"{"kind":"segment","key":"beta","action":"delete","definition":null,"archived":false}"#,
            "]}\n\n"
        )
    );
    for items in [&[][..], &[created], &[created, deleted, archived]] {
        for version in [0, 1, 161, i64::MAX, -1] {
            assert_eq!(
                change_frame(version, items),
                change_frame_before(version, items)
            );
        }
    }
    assert_eq!(
        text(&change_frame::<Value>(3, &[])),
        "id: 3\nevent: change\ndata: {\"version\":3,\"changes\":[]}\n\n"
    );
}

#[test]
fn every_action_and_kind_is_spelt_as_the_store_spells_it() {
    let actions = [
        (Action::Create, "create"),
        (Action::Update, "update"),
        (Action::Toggle, "toggle"),
        (Action::Archive, "archive"),
        (Action::Restore, "restore"),
        (Action::Delete, "delete"),
        (Action::Copy, "copy"),
        (Action::Import, "import"),
    ];
    for (action, spelling) in actions {
        assert_eq!(serde_json::to_value(action).unwrap(), json!(spelling));
        assert_eq!(action.as_str(), spelling);
        let item = ChangedItem {
            kind: ItemKind::Segment,
            key: "k",
            action,
            definition: None,
            archived: false,
        };
        assert_eq!(change_frame(1, &[item]), change_frame_before(1, &[item]));
    }
    for (kind, spelling) in [(ItemKind::Flag, "flag"), (ItemKind::Segment, "segment")] {
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(spelling));
        assert_eq!(kind.as_str(), spelling);
    }
}

#[test]
fn a_snapshot_frame_is_written_as_before() {
    let doc = br#"{"flags":{"a":{"variants":{"on":true}}}}"#;
    let frame = snapshot_frame(5, doc);
    assert_eq!(
        text(&frame),
        "id: 5\nevent: snapshot\ndata: {\"flags\":{\"a\":{\"variants\":{\"on\":true}}}}\n\n"
    );
    assert_eq!(frame, snapshot_frame_before(5, doc));
    assert_eq!(snapshot_frame(0, b"{}"), snapshot_frame_before(0, b"{}"));
}

#[test]
fn the_refetch_frame_and_the_heartbeat_are_written_as_before() {
    assert_eq!(
        text(&refetch_frame(7)),
        "event: message\ndata: {\"type\":\"refetchEvaluation\",\"etag\":\"\\\"7\\\"\"}\n\n"
    );
    for version in [0, 7, 123_456_789, i64::MAX] {
        assert_eq!(refetch_frame(version), refetch_frame_before(version));
    }
    assert_eq!(heartbeat(), b": keepalive\n\n");
}

#[test]
fn data_with_line_breaks_is_written_as_several_data_lines() {
    let check = |data: &[u8], expect: &str| {
        assert_eq!(text(&encode_frame(None, "x", data)), expect, "{data:?}");
    };
    check(b"", "event: x\ndata: \n\n");
    check(b"one", "event: x\ndata: one\n\n");
    check(b"a\nb", "event: x\ndata: a\ndata: b\n\n");
    check(b"a\r\nb\rc", "event: x\ndata: a\ndata: b\ndata: c\n\n");
    check(b"a\n", "event: x\ndata: a\ndata: \n\n");
    check(b"\n\n", "event: x\ndata: \ndata: \ndata: \n\n");
    assert_eq!(
        text(&encode_frame(Some(-3), "bad\r\nname", b"d")),
        "id: -3\nevent: badname\ndata: d\n\n"
    );
    let mut out = b"before".to_vec();
    write_frame(&mut out, Some(1), "e", b"d");
    assert_eq!(text(&out), "beforeid: 1\nevent: e\ndata: d\n\n");
}

/// A frame as (id, event, data), for comparing.
type Plain = (Option<String>, String, String);

fn plain(frame: Frame) -> Plain {
    (frame.id, frame.event, frame.data)
}

/// Feeds `chunks` in order and takes every frame out; panics on an error.
fn decode(chunks: &[&[u8]]) -> Vec<Plain> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk);
        while let Some(frame) = decoder.next_frame() {
            out.push(plain(frame.unwrap()));
        }
    }
    out
}

/// Decodes `input` whole, one byte at a time, and split in two at every
/// place, and compares each with `expect` (id, event, data).
fn check(input: &str, expect: &[(Option<&str>, &str, &str)]) {
    let expect: Vec<Plain> = expect
        .iter()
        .map(|(id, event, data)| (id.map(str::to_owned), event.to_string(), data.to_string()))
        .collect();
    let bytes = input.as_bytes();
    assert_eq!(decode(&[bytes]), expect, "whole: {input:?}");
    let single: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode(&single), expect, "byte by byte: {input:?}");
    for at in 0..=bytes.len() {
        let (a, b) = bytes.split_at(at);
        assert_eq!(decode(&[a, b]), expect, "split at {at}: {input:?}");
    }
}

#[test]
fn frames_are_dispatched_by_a_blank_line() {
    check("", &[]);
    check("data: a\n", &[]);
    check("data: a\n\n", &[(None, "message", "a")]);
    check(
        "id: 1\nevent: change\ndata: {}\n\nid: 2\nevent: snapshot\ndata: {\"a\":1}\n\n",
        &[
            (Some("1"), "change", "{}"),
            (Some("2"), "snapshot", "{\"a\":1}"),
        ],
    );
    // Blank lines between events change nothing.
    check(
        "\n\n\ndata: a\n\n\n\ndata: b\n\n",
        &[(None, "message", "a"), (None, "message", "b")],
    );
}

#[test]
fn lines_end_with_lf_cr_or_crlf() {
    let expect = [(Some("1"), "change", "x"), (None, "message", "y")];
    check("id: 1\nevent: change\ndata: x\n\ndata: y\n\n", &expect);
    check(
        "id: 1\r\nevent: change\r\ndata: x\r\n\r\ndata: y\r\n\r\n",
        &expect,
    );
    check("id: 1\revent: change\rdata: x\r\rdata: y\r\r", &expect);
    check("id: 1\revent: change\r\ndata: x\n\r\ndata: y\n\r", &expect);
    // CR then LF is one line end; LF then CR is two.
    check("data: a\r\n\r\n", &[(None, "message", "a")]);
    check("data: a\n\r", &[(None, "message", "a")]);
    check("data: a\r\r\n", &[(None, "message", "a")]);
}

#[test]
fn data_lines_are_joined_with_lf() {
    check("data: a\ndata: b\n\n", &[(None, "message", "a\nb")]);
    check(
        "data: a\r\ndata\r\ndata: b\r\n\r\n",
        &[(None, "message", "a\n\nb")],
    );
    check("data\n\n", &[(None, "message", "")]);
    check("data:\n\n", &[(None, "message", "")]);
    check("data:\ndata:\n\n", &[(None, "message", "\n")]);
    // A round trip through the encoder keeps line breaks (as LF).
    let frame = encode_frame(None, "e", b"a\nb\r\nc");
    assert_eq!(decode(&[&frame]), [(None, "e".into(), "a\nb\nc".into())]);
}

#[test]
fn one_space_after_the_colon_is_dropped() {
    check("data:a\n\n", &[(None, "message", "a")]);
    check("data: a\n\n", &[(None, "message", "a")]);
    check("data:  a \n\n", &[(None, "message", " a ")]);
    check("data:\ta\n\n", &[(None, "message", "\ta")]);
    check("data: a: b\n\n", &[(None, "message", "a: b")]);
    check("event:  x\ndata\n\n", &[(None, " x", "")]);
}

#[test]
fn comments_heartbeats_and_unknown_fields_are_ignored() {
    let mut input = Vec::new();
    input.extend_from_slice(heartbeat());
    input.extend_from_slice(b": comment\n:\n");
    input.extend_from_slice(b"data: a\n: in the middle\nfoo: bar\nData: no\nevent\ndata: b\n\n");
    input.extend_from_slice(heartbeat());
    check(text(&input), &[(None, "message", "a\nb")]);
    check(": keepalive\n\n: keepalive\n\n", &[]);
}

#[test]
fn an_event_without_data_is_not_dispatched() {
    check("event: change\n\n", &[]);
    check(
        "id: 4\nevent: change\n\ndata: x\n\n",
        &[(None, "message", "x")],
    );
    // Its event type does not carry over to the next one.
    check("event: a\n\nevent: b\ndata: x\n\n", &[(None, "b", "x")]);
}

#[test]
fn an_empty_event_type_is_a_message() {
    check("event:\ndata: x\n\n", &[(None, "message", "x")]);
    check(
        "event: change\nevent:\ndata: x\n\n",
        &[(None, "message", "x")],
    );
    check("event: a\nevent: b\ndata: x\n\n", &[(None, "b", "x")]);
}

#[test]
fn a_leading_byte_order_mark_is_skipped() {
    check("\u{feff}data: a\n\n", &[(None, "message", "a")]);
    check("\u{feff}\ndata: a\n\n", &[(None, "message", "a")]);
    // Only at the start of the stream.
    check("data: a\n\n\u{feff}data: b\n\n", &[(None, "message", "a")]);
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    let mut d = Decoder::new();
    d.feed(b"data: a\xffb\n\n");
    assert_eq!(d.next_frame().unwrap().unwrap().data, "a\u{fffd}b");
    // A character split across chunks is put back together.
    let bytes = "data: é\n\n".as_bytes();
    let mut d = Decoder::new();
    d.feed(&bytes[..7]);
    d.feed(&bytes[7..]);
    assert_eq!(d.next_frame().unwrap().unwrap().data, "é");
}

#[test]
fn the_last_event_id_persists_and_counts_once_dispatched() {
    let mut d = Decoder::new();
    assert_eq!(d.last_event_id(), "");
    d.feed(b"id: 1\ndata: a\n\n");
    assert_eq!(d.last_event_id(), "1");
    // An event without an id keeps the last one (its frame has none).
    d.feed(b"data: b\n\n");
    assert_eq!(d.last_event_id(), "1");
    // An id in an event that is not yet complete does not count...
    d.feed(b"id: 2\ndata: c\n");
    assert_eq!(d.last_event_id(), "1");
    // ...until it is.
    d.feed(b"\n");
    assert_eq!(d.last_event_id(), "2");
    // An event without data is not dispatched, but its id counts.
    d.feed(b"id: 3\n\n");
    assert_eq!(d.last_event_id(), "3");
    // An id containing NUL is ignored; an empty one resets.
    d.feed(b"id: 4\0\ndata: d\n\n");
    assert_eq!(d.last_event_id(), "3");
    d.feed(b"id\ndata: e\n\n");
    assert_eq!(d.last_event_id(), "");
    let ids: Vec<Option<String>> = std::iter::from_fn(|| d.next_frame())
        .map(|f| f.unwrap().id)
        .collect();
    assert_eq!(
        ids,
        [Some("1"), None, Some("2"), None, Some("")].map(|i| i.map(str::to_owned))
    );
}

#[test]
fn retry_takes_digits_only() {
    let mut d = Decoder::new();
    d.feed(b"retry: 3000\ndata: a\n\n");
    let frame = d.next_frame().unwrap().unwrap();
    assert_eq!((frame.retry, d.retry()), (Some(3000), Some(3000)));
    for invalid in [
        &b"retry: 3s\n"[..],
        b"retry: -1\n",
        b"retry:\n",
        b"retry: 1 \n",
        b"retry: 99999999999999999999999\n",
    ] {
        d.feed(invalid);
        d.feed(b"data: b\n\n");
        let frame = d.next_frame().unwrap().unwrap();
        assert_eq!((frame.retry, d.retry()), (None, Some(3000)), "{invalid:?}");
    }
    // Taken even from an event that is not dispatched.
    d.feed(b"retry: 10\n\n");
    assert!(d.next_frame().is_none());
    assert_eq!(d.retry(), Some(10));
}

#[test]
fn an_event_cut_short_by_the_end_is_dropped() {
    check(
        "id: 1\ndata: a\n\nid: 2\ndata: b",
        &[(Some("1"), "message", "a")],
    );
    check("data: a\n", &[]);
}

#[test]
fn a_line_longer_than_the_bound_is_an_error() {
    let mut d = Decoder::with_limit(16);
    d.feed(b"data: 0123456789\n\n");
    assert_eq!(d.next_frame().unwrap().unwrap().data, "0123456789");
    // Split across chunks, it is caught before the line ends.
    d.feed(b"data: 0123456789a");
    let err = d.next_frame().unwrap().unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 16 }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "server-sent event larger than the limit of 16 bytes"
    );
    // Reported once; then the decoder is done and takes nothing more.
    assert!(d.next_frame().is_none());
    d.feed(b"\n\ndata: a\n\n");
    assert!(d.next_frame().is_none());
}

#[test]
fn a_long_line_in_one_chunk_is_an_error() {
    let mut d = Decoder::with_limit(16);
    d.feed(b"data: a\n\n: a comment that is too long\n\ndata: b\n\n");
    assert_eq!(d.next_frame().unwrap().unwrap().data, "a");
    assert!(matches!(d.next_frame(), Some(Err(Error::TooLarge { .. }))));
    assert!(d.next_frame().is_none());
}

#[test]
fn data_accumulating_past_the_bound_is_an_error() {
    let mut d = Decoder::with_limit(32);
    for _ in 0..4 {
        d.feed(b"data: 0123456\n");
    }
    assert!(matches!(
        d.next_frame(),
        Some(Err(Error::TooLarge { limit: 32 }))
    ));
    // Many events, each under the bound, are fine.
    let mut d = Decoder::with_limit(32);
    for _ in 0..1000 {
        d.feed(b"data: 0123456\ndata: 0123456\n\n: keepalive\n\n");
        assert_eq!(d.next_frame().unwrap().unwrap().data, "0123456\n0123456");
    }
}

#[test]
fn what_the_server_writes_decodes_to_the_same() {
    let def = json!({"variants": {"on": true}});
    let item = ChangedItem {
        kind: ItemKind::Flag,
        key: "a",
        action: Action::Update,
        definition: Some(&def),
        archived: false,
    };
    let mut stream = Vec::new();
    stream.extend_from_slice(&snapshot_frame(4, b"{\"flags\":{}}"));
    stream.extend_from_slice(heartbeat());
    stream.extend_from_slice(&change_frame(5, &[item]));
    stream.extend_from_slice(&refetch_frame(5));
    let frames = decode(&[&stream]);
    assert_eq!(frames.len(), 3);
    assert_eq!(
        frames[0],
        (Some("4".into()), "snapshot".into(), "{\"flags\":{}}".into())
    );
    assert_eq!(
        (frames[1].0.as_deref(), frames[1].1.as_str()),
        (Some("5"), "change")
    );
    let data: Value = serde_json::from_str(&frames[1].2).unwrap();
    assert_eq!(
        data,
        json!({"version": 5, "changes": [{"kind": "flag", "key": "a", "action": "update", "definition": def, "archived": false}]})
    );
    assert_eq!(
        frames[2],
        (
            None,
            "message".into(),
            r#"{"type":"refetchEvaluation","etag":"\"5\""}"#.into()
        )
    );
}

/// Splits `bytes` at the given (sorted, deduplicated) positions.
fn split_at<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut from = 0;
    for &cut in cuts {
        out.push(&bytes[from..cut]);
        from = cut;
    }
    out.push(&bytes[from..]);
    out
}

fn arb_frame() -> impl Strategy<Value = (Option<i64>, String, String)> {
    (
        proptest::option::of(any::<i64>()),
        "[a-z]{1,8}",
        // Data of any characters, line breaks included.
        "(.|\r|\n){0,40}",
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Frames written by the encoder, with heartbeats between them, decode
    /// to what was written however the stream is cut into chunks (line
    /// breaks in data come back as LF).
    #[test]
    fn encoded_frames_decode_alike_however_split(
        frames in proptest::collection::vec(arb_frame(), 0..6),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..12),
        line_ends in prop_oneof![Just("\n"), Just("\r"), Just("\r\n")],
    ) {
        let mut stream = Vec::new();
        for (id, event, data) in &frames {
            let frame = encode_frame(*id, event, data.as_bytes());
            // The encoder ends lines with LF; any line end must do.
            stream.extend_from_slice(text(&frame).replace('\n', line_ends).as_bytes());
            stream.extend_from_slice(heartbeat());
        }
        let mut positions: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        positions.sort_unstable();
        positions.dedup();
        let got = decode(&split_at(&stream, &positions));
        let expect: Vec<Plain> = frames
            .iter()
            .map(|(id, event, data)| {
                (
                    id.map(|i| i.to_string()),
                    event.clone(),
                    data.replace("\r\n", "\n").replace('\r', "\n"),
                )
            })
            .collect();
        prop_assert_eq!(got, expect);
    }

    /// Arbitrary bytes, arbitrarily split, never make the decoder hold more
    /// than its bound, and decode the same however split.
    #[test]
    fn arbitrary_input_is_decoded_alike_however_split(
        bytes in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' '), any::<u8>(), Just(b'd')],
            0..200,
        ),
        cuts in proptest::collection::vec(any::<proptest::sample::Index>(), 0..8),
    ) {
        let run = |chunks: &[&[u8]]| {
            let mut d = Decoder::with_limit(64);
            let mut out = Vec::new();
            for chunk in chunks {
                d.feed(chunk);
                assert!(d.line.len() + d.data.len() <= 64 + 1);
                while let Some(f) = d.next_frame() {
                    out.push(f.map(plain).map_err(|e| e.to_string()));
                }
            }
            out
        };
        let mut positions: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        positions.sort_unstable();
        positions.dedup();
        prop_assert_eq!(run(&split_at(&bytes, &positions)), run(&[&bytes]));
    }
}
