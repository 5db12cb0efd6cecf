//! Bucketing properties: deterministic, close to the weights, monotonic
//! when a rollout grows, and independent across salts.

use proptest::prelude::*;
use vexil_engine::{Context, Format, Snapshot, ValueType, load};

fn rollout_doc(bucketing: &str, weights: &[u32], salt: Option<&str>) -> Snapshot {
    let weights: Vec<String> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| format!("\"v{i}\": {w}"))
        .collect();
    let variants: Vec<String> = (0..weights.len())
        .map(|i| format!("\"v{i}\": {i}"))
        .collect();
    let salt = salt
        .map(|s| format!(", \"salt\": \"{s}\""))
        .unwrap_or_default();
    let doc = format!(
        r#"{{"bucketing": "{bucketing}", "flags": {{"f": {{"variants": {{{}}}, "defaultServe": {{"rollout": {{"weights": {{{}}}{salt}}}}}}}}}}}"#,
        variants.join(","),
        weights.join(",")
    );
    load(&doc, Format::Native).unwrap().snapshot
}

fn flagd_doc(bucketing: &str, weights: &[u32]) -> Snapshot {
    let buckets: Vec<String> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| format!("[\"v{i}\", {w}]"))
        .collect();
    let variants: Vec<String> = (0..weights.len())
        .map(|i| format!("\"v{i}\": {i}"))
        .collect();
    let doc = format!(
        r#"{{"bucketing": "{bucketing}", "flags": {{"f": {{"state": "ENABLED", "variants": {{{}}}, "defaultVariant": "v0", "targeting": {{"fractional": [{}]}}}}}}}}"#,
        variants.join(","),
        buckets.join(",")
    );
    load(&doc, Format::Flagd).unwrap().snapshot
}

fn variant_of(s: &Snapshot, key: &str) -> usize {
    let ctx = Context::new().with_targeting_key(key);
    let e = s.evaluate("f", &ctx, ValueType::Int);
    e.value
        .and_then(|v| v.as_u64())
        .expect("rollouts always give a value") as usize
}

/// Weights over 2–4 variants summing to 100.
fn weights() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(1u32..100, 1..4).prop_map(|cuts| {
        let mut cuts: Vec<u32> = cuts.into_iter().collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut out = Vec::new();
        let mut last = 0;
        for c in cuts {
            out.push(c - last);
            last = c;
        }
        out.push(100 - last);
        out
    })
}

const KEYS: usize = 100_000;

fn shares(s: &Snapshot, n: usize, seed: u64) -> Vec<f64> {
    let mut counts = vec![0usize; n];
    for i in 0..KEYS {
        counts[variant_of(s, &format!("user-{seed}-{i}"))] += 1;
    }
    counts
        .iter()
        .map(|&c| c as f64 * 100.0 / KEYS as f64)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn shares_are_within_one_percent_of_weights(w in weights(), seed in any::<u64>(), cbor in any::<bool>()) {
        let bucketing = if cbor { "cbor" } else { "concat" };
        for s in [rollout_doc(bucketing, &w, None), flagd_doc(bucketing, &w)] {
            let got = shares(&s, w.len(), seed);
            for (share, weight) in got.iter().zip(&w) {
                prop_assert!((share - f64::from(*weight)).abs() <= 1.0, "weights {w:?}, shares {got:?}");
            }
        }
    }
}

proptest! {
    #[test]
    fn same_key_same_variant_across_snapshots(key in ".{1,40}", w in weights()) {
        let a = rollout_doc("concat", &w, None);
        let b = rollout_doc("concat", &w, None);
        prop_assert_eq!(variant_of(&a, &key), variant_of(&b, &key));
        // Native rollouts and flagd's fractional agree for the same weights.
        prop_assert_eq!(variant_of(&a, &key), variant_of(&flagd_doc("concat", &w), &key));
        prop_assert_eq!(
            variant_of(&rollout_doc("cbor", &w, None), &key),
            variant_of(&flagd_doc("cbor", &w), &key)
        );
    }

    #[test]
    fn growing_a_rollout_keeps_everyone_in(key in "[a-z0-9-]{1,24}", small in 0u32..=100, grow in 0u32..=100) {
        let large = (small + grow).min(100);
        for bucketing in ["concat", "cbor"] {
            let before = rollout_doc(bucketing, &[small, 100 - small], None);
            let after = rollout_doc(bucketing, &[large, 100 - large], None);
            if variant_of(&before, &key) == 0 {
                prop_assert_eq!(variant_of(&after, &key), 0, "{} at {}% -> {}%", key, small, large);
            }
        }
    }
}

#[test]
fn ten_to_twenty_percent_keeps_all_of_the_first_ten() {
    let ten = rollout_doc("concat", &[10, 90], None);
    let twenty = rollout_doc("concat", &[20, 80], None);
    let mut in_ten = 0;
    for i in 0..KEYS {
        let key = format!("user-{i}");
        if variant_of(&ten, &key) == 0 {
            in_ten += 1;
            assert_eq!(variant_of(&twenty, &key), 0, "{key} dropped out");
        }
    }
    assert!(
        (9_000..11_000).contains(&in_ten),
        "{in_ten} of {KEYS} in a 10% rollout"
    );
}

#[test]
fn salts_are_independent() {
    let a = rollout_doc("concat", &[50, 50], Some("experiment-a"));
    let b = rollout_doc("concat", &[50, 50], Some("experiment-b"));
    let same = rollout_doc("concat", &[50, 50], Some("experiment-a"));
    let mut both = 0;
    for i in 0..KEYS {
        let key = format!("user-{i}");
        let va = variant_of(&a, &key);
        assert_eq!(va, variant_of(&same, &key));
        if va == 0 && variant_of(&b, &key) == 0 {
            both += 1;
        }
    }
    // Independent halves overlap on a quarter of users.
    let share = both as f64 / KEYS as f64;
    assert!((0.24..0.26).contains(&share), "overlap {share}");
}
