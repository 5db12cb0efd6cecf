//! Tests of `hub`.

use super::*;

fn event(version: i64) -> StreamEvent {
    StreamEvent {
        version,
        frame: Bytes::from(format!("v{version}")),
        keys: false,
    }
}

#[test]
fn resumes_from_the_ring_only_when_it_reaches_back() {
    let hub = Hub::new(3);
    for v in 1..=5 {
        hub.publish(7, event(v));
    }
    // The ring holds 3, 4, 5.
    assert_eq!(
        hub.since(7, 2, 5),
        Some(vec![
            Bytes::from("v3"),
            Bytes::from("v4"),
            Bytes::from("v5")
        ])
    );
    assert_eq!(hub.since(7, 4, 4), Some(vec![]));
    assert_eq!(hub.since(7, 3, 4), Some(vec![Bytes::from("v4")]));
    assert_eq!(hub.since(7, 1, 5), None, "version 2 fell out of the ring");
    assert_eq!(hub.since(8, 0, 1), None, "another environment");
}

#[test]
fn older_versions_are_not_recorded_twice() {
    let hub = Hub::new(8);
    let mut rx = hub.subscribe(1);
    assert!(hub.publish(1, event(2)));
    assert!(!hub.publish(1, event(2)));
    assert!(!hub.publish(1, event(1)));
    assert_eq!(rx.try_recv().map(|e| e.version).ok(), Some(2));
    assert!(rx.try_recv().is_err());
    assert_eq!(hub.subscribers(), 1);
}

#[test]
fn a_gap_in_the_ring_means_no_resume() {
    let hub = Hub::new(8);
    hub.publish(1, event(1));
    hub.publish(1, event(3));
    assert_eq!(hub.since(1, 0, 3), None);
    assert_eq!(hub.since(1, 2, 3), Some(vec![Bytes::from("v3")]));
}
