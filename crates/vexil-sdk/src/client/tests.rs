//! Unit tests of the client: typed getters and details on a fixed state,
//! which flags a new version may change, and listeners.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use vexil_engine::Document;

use super::listeners::{Listeners, changed_flags};
use super::*;

fn client(doc: serde_json::Value) -> Client {
    Client::fixed(Arc::new(Followed::bootstrap(&doc.to_string()).unwrap()))
}

#[test]
fn getters_give_values_or_the_default_and_details_say_why() {
    let c = client(json!({"flags": {
        "on": {"variants": {"on": true, "off": false}, "defaultServe": {"variant": "on"}, "metadata": {"team": "x"}},
        "ratio": {"variants": {"v": 0.5}, "defaultServe": {"variant": "v"}},
        "dark": {"variants": {"on": true}, "enabled": false, "defaultServe": {"variant": "on"}},
        "obj": {"variants": {"v": {"a": [1]}}, "defaultServe": {"variant": "v"}},
        "name": {"variants": {"v": "hi"}, "defaultServe": {"variant": "v"}}
    }}));
    let ctx = Context::new();
    assert!(c.bool_value("on", &ctx, false));
    assert!(c.bool_value("missing", &ctx, true));
    assert_eq!(c.string_value("on", &ctx, "d"), "d");
    assert_eq!(c.string_value("name", &ctx, "d"), "hi");
    assert_eq!(c.float_value("ratio", &ctx, 1.0), 0.5);
    assert_eq!(c.int_value("ratio", &ctx, 7), 7);
    assert_eq!(c.json_value("obj", &ctx, json!(null)), json!({"a": [1]}));

    let d = c.bool_details("on", &ctx, false);
    assert_eq!(
        (
            d.value,
            d.variant.as_deref(),
            d.reason,
            d.error_code,
            d.version
        ),
        (true, Some("on"), Reason::Static, None, Some(0))
    );
    assert_eq!(d.metadata.get("team"), Some(&json!("x")));

    let d = c.bool_details("missing", &ctx, true);
    assert_eq!(
        (d.value, d.reason, d.error_code),
        (true, Reason::Error, Some(ErrorCode::FlagNotFound))
    );
    assert!(d.error_message.unwrap().contains("missing"));

    // A number with a fraction is not an integer.
    let d = c.int_details("ratio", &ctx, 3);
    assert_eq!(
        (d.value, d.error_code, d.variant),
        (3, Some(ErrorCode::TypeMismatch), None)
    );

    // No value (disabled without off variant): the default, not an error.
    let d = c.bool_details("dark", &ctx, true);
    assert_eq!(
        (d.value, d.reason, d.error_code),
        (true, Reason::Disabled, None)
    );

    let d = c.details("name", &ctx, ValueType::Any);
    assert_eq!(d.value, Some(json!("hi")));
}

#[test]
fn before_the_first_version_everything_is_the_default_and_not_ready() {
    let (_tx, rx) = watch::channel(State::new(None));
    let c = Client {
        inner: Arc::new(Inner {
            current: Arc::default(),
            state: rx,
            _state_tx: None,
            follower: None,
            listeners: Arc::default(),
            tasks: Vec::new(),
        }),
    };
    let d = c.string_details("x", &Context::new(), "d");
    assert_eq!(
        (d.value.as_str(), d.reason, d.error_code, d.version),
        ("d", Reason::Error, Some(ErrorCode::ProviderNotReady), None)
    );
    assert_eq!(c.status(), Status::NotReady);
}

fn doc(value: serde_json::Value) -> Document {
    serde_json::from_value(value).unwrap()
}

#[test]
fn changed_flags_follow_definitions_prerequisites_and_segments() {
    let on = json!({"variants": {"on": true, "off": false}, "defaultServe": {"variant": "on"}});
    let off = json!({"variants": {"on": true, "off": false}, "defaultServe": {"variant": "off"}});
    let old = doc(json!({"flags": {
        "a": on, "b": on, "gone": on,
        "needs-a": {"variants": {"x": 1}, "defaultServe": {"variant": "x"}, "prerequisites": [{"flag": "a", "variant": "on"}]},
        "needs-needs-a": {"variants": {"x": 1}, "defaultServe": {"variant": "x"}, "prerequisites": [{"flag": "needs-a", "variant": "x"}]}
    }}));
    let mut new = old.clone();
    new.flags
        .insert("a".into(), serde_json::from_value(off.clone()).unwrap());
    new.flags.remove("gone");
    assert_eq!(
        changed_flags(Some(&old), &new),
        ["a", "gone", "needs-a", "needs-needs-a"]
    );
    assert!(changed_flags(Some(&old), &old).is_empty());
    assert_eq!(changed_flags(None, &old).len(), 5);
    let mut segmented = old.clone();
    segmented.segments.insert(
        "s".into(),
        serde_json::from_value(json!({"included": ["u"]})).unwrap(),
    );
    assert_eq!(changed_flags(Some(&old), &segmented).len(), 5);
}

#[test]
fn listeners_are_called_by_flag_and_survive_a_panicking_one() {
    let listeners = Listeners::default();
    let any = Arc::new(AtomicUsize::new(0));
    let for_b = Arc::new(AtomicUsize::new(0));
    let a = any.clone();
    listeners.add(None, 0, Arc::new(|_: &Changed| panic!("listener bug")));
    listeners.add(
        None,
        0,
        Arc::new(move |_: &Changed| {
            a.fetch_add(1, Ordering::SeqCst);
        }),
    );
    let b = for_b.clone();
    let id = listeners.add(
        Some("b".into()),
        0,
        Arc::new(move |_: &Changed| {
            b.fetch_add(1, Ordering::SeqCst);
        }),
    );
    let changed = |flags: &[&str]| Changed {
        version: 1,
        flags: flags
            .iter()
            .map(|f| (*f).to_owned())
            .collect::<Vec<_>>()
            .into(),
    };
    listeners.notify(&changed(&["a"]), 1);
    listeners.notify(&changed(&["a", "b"]), 2);
    assert_eq!(
        (any.load(Ordering::SeqCst), for_b.load(Ordering::SeqCst)),
        (2, 1)
    );
    assert!(listeners.remove(id));
    assert!(!listeners.remove(id));
    listeners.notify(&changed(&["b"]), 3);
    assert_eq!(
        (any.load(Ordering::SeqCst), for_b.load(Ordering::SeqCst)),
        (3, 1)
    );
    // A listener added at update 3 is not told of update 3 again.
    let late = Arc::new(AtomicUsize::new(0));
    let l = late.clone();
    listeners.add(
        None,
        3,
        Arc::new(move |_: &Changed| {
            l.fetch_add(1, Ordering::SeqCst);
        }),
    );
    listeners.notify(&changed(&["b"]), 3);
    listeners.notify(&changed(&["b"]), 4);
    assert_eq!(late.load(Ordering::SeqCst), 1);
}

#[test]
fn building_needs_something_to_evaluate() {
    let err = Client::builder().build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = Client::builder()
        .cache_dir("/tmp/x")
        .bootstrap_file("/nonexistent")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(cache_label("http://a", "k1") != cache_label("http://a", "k2"));
    assert!(!cache_label("http://a", "secret-key").contains("secret"));
}
