//! Issue 9, items 3 and 4: an environment's bucketing is a stored setting
//! (changed with `PATCH`, imported and exported, served in the snapshot
//! and used by evaluation), and the admin flag view says which flags
//! in-process flagd providers get.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vexil_engine::{Context, Format, ValueType};

use crate::support::{ENV, Server, backends, cleanup};

fn rollout() -> Value {
    json!({"variants": {"a": "a", "b": "b", "c": "c"}, "defaultServe": {"rollout": {"weights": {"a": 34, "b": 33, "c": 33}}}})
}

/// The variant Vexil's engine gives `user` for the rollout flag under
/// `bucketing`.
fn expected(bucketing: &str, user: &str) -> String {
    let doc = json!({"bucketing": bucketing, "flags": {"r": rollout()}}).to_string();
    let compiled = vexil_engine::load(&doc, Format::Native).unwrap();
    let ctx = Context::new().with_targeting_key(user);
    let e = compiled.snapshot.evaluate("r", &ctx, ValueType::String);
    e.variant.unwrap().to_owned()
}

async fn ofrep_variant(s: &Server, key: &str, user: &str) -> String {
    let (st, _, body) = s
        .call(
            Method::POST,
            "/ofrep/v1/evaluate/flags/r",
            Some(key),
            Some(&json!({"context": {"targetingKey": user}})),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    body["variant"].as_str().unwrap().to_owned()
}

async fn server_key(s: &Server, env: &str) -> String {
    let (st, _, k) = s
        .admin(
            Method::POST,
            "/api/v1/keys",
            Some(&json!({"name": format!("srv-{env}"), "scope": "server", "project": "default", "environment": env})),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{k}");
    k["secret"].as_str().unwrap().to_owned()
}

async fn snapshot_bucketing(s: &Server, key: &str) -> Value {
    let (st, _, body) = s
        .call(Method::GET, "/api/v1/snapshot", Some(key), None, &[])
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    body["bucketing"].clone()
}

#[tokio::test]
async fn bucketing_is_an_environment_setting_written_like_any_change() {
    // Users whose bucket differs between the two schemes, so the test
    // shows which one evaluation used.
    let users: Vec<String> = (0..200)
        .map(|i| format!("user-{i}"))
        .filter(|u| expected("concat", u) != expected("cbor", u))
        .take(5)
        .collect();
    assert_eq!(users.len(), 5);
    for (data, _dir) in backends().await {
        let s = Server::start(&data);
        let (st, _, env) = s.admin(Method::GET, ENV, None, &[]).await;
        assert_eq!((st, &env["bucketing"]), (StatusCode::OK, &json!("concat")));
        let (st, _, _) = s
            .admin(
                Method::PUT,
                &format!("{ENV}/flags/r"),
                Some(&rollout()),
                &[("if-none-match", "*")],
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let key = server_key(&s, "development").await;
        assert_eq!(snapshot_bucketing(&s, &key).await, Value::Null);
        for u in &users {
            assert_eq!(ofrep_variant(&s, &key, u).await, expected("concat", u));
        }

        let (st, _, bad) = s
            .admin(
                Method::PATCH,
                ENV,
                Some(&json!({"bucketing": "murmur"})),
                &[],
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
        // Absent means unchanged; null is not a scheme (found by schemathesis).
        let (st, _, bad) = s
            .admin(Method::PATCH, ENV, Some(&json!({"bucketing": null})), &[])
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
        let (st, _, env) = s
            .admin(Method::PATCH, ENV, Some(&json!({"bucketing": "cbor"})), &[])
            .await;
        assert_eq!(st, StatusCode::OK, "{env}");
        assert_eq!(
            (&env["bucketing"], &env["version"]),
            (&json!("cbor"), &json!(2))
        );
        // The same setting again writes nothing.
        let (_, _, again) = s
            .admin(Method::PATCH, ENV, Some(&json!({"bucketing": "cbor"})), &[])
            .await;
        assert_eq!(again["version"], 2);
        let (_, _, env) = s.admin(Method::GET, ENV, None, &[]).await;
        assert_eq!(
            (&env["bucketing"], &env["version"]),
            (&json!("cbor"), &json!(2))
        );
        assert_eq!(snapshot_bucketing(&s, &key).await, "cbor");
        for u in &users {
            assert_eq!(ofrep_variant(&s, &key, u).await, expected("cbor", u), "{u}");
        }
        let (_, _, audit) = s
            .admin(Method::GET, &format!("{ENV}/audit"), None, &[])
            .await;
        let entry = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == "setting")
            .cloned()
            .unwrap_or_else(|| panic!("{audit}"));
        assert_eq!(
            (
                &entry["key"],
                &entry["before"],
                &entry["after"],
                &entry["version"]
            ),
            (
                &json!("bucketing"),
                &json!("concat"),
                &json!("cbor"),
                &json!(2)
            )
        );
        drop(s);
        cleanup(&data).await;
    }
}

#[tokio::test]
async fn a_cbor_document_round_trips_through_import_and_export() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let doc = json!({"bucketing": "cbor", "flags": {"r": rollout()}});
    let import = format!("{ENV}/import");
    let (st, plan) = s
        .raw(
            Method::POST,
            &format!("{import}?dryRun=true"),
            doc.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(
        (st, &plan["bucketing"]),
        (StatusCode::OK, &json!("cbor")),
        "{plan}"
    );
    let (_, _, env) = s.admin(Method::GET, ENV, None, &[]).await;
    assert_eq!(env["bucketing"], "concat", "a dry run changes nothing");
    let (st, done) = s
        .raw(Method::POST, &import, doc.to_string().into_bytes(), &[])
        .await;
    assert_eq!(
        (st, &done["version"]),
        (StatusCode::OK, &json!(1)),
        "{done}"
    );
    let (_, _, env) = s.admin(Method::GET, ENV, None, &[]).await;
    assert_eq!(env["bucketing"], "cbor");
    let (st, _, exported) = s
        .admin(Method::GET, &format!("{ENV}/export"), None, &[])
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(exported["bucketing"], "cbor", "{exported}");
    // The export imports back as it is: nothing changes.
    let (st, again) = s
        .raw(
            Method::POST,
            &import,
            exported.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{again}");
    assert_eq!(
        (
            &again["version"],
            &again["bucketing"],
            &again["flags"]["unchanged"]
        ),
        (&json!(1), &Value::Null, &json!(1)),
        "{again}"
    );
    // A merge of a document that does not name a bucketing keeps it; a
    // replace sets the document's (the default).
    let plain = json!({"flags": {"r": rollout()}}).to_string().into_bytes();
    let (_, merged) = s.raw(Method::POST, &import, plain.clone(), &[]).await;
    assert_eq!(merged["bucketing"], Value::Null, "{merged}");
    let (_, _, env) = s.admin(Method::GET, ENV, None, &[]).await;
    assert_eq!(env["bucketing"], "cbor");
    let (_, replaced) = s
        .raw(Method::POST, &format!("{import}?mode=replace"), plain, &[])
        .await;
    assert_eq!(replaced["bucketing"], "concat", "{replaced}");
    let (_, _, env) = s.admin(Method::GET, ENV, None, &[]).await;
    assert_eq!(env["bucketing"], "concat");
}

#[tokio::test]
async fn the_flag_view_says_which_flags_in_process_flagd_providers_get() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let put = |key: &str, def: Value| {
        let s = &s;
        let path = format!("{ENV}/flags/{key}");
        async move {
            let (st, _, body) = s
                .admin(Method::PUT, &path, Some(&def), &[("if-none-match", "*")])
                .await;
            assert_eq!(st, StatusCode::CREATED, "{body}");
            body
        }
    };
    let created = put("r", rollout()).await;
    assert_eq!(
        created["flagdInProcess"],
        json!({"available": true, "reason": null, "message": null})
    );
    let regex = json!({"variants": {"on": true, "off": false}, "defaultServe": {"variant": "off"},
        "rules": [{"clauses": [{"attribute": "email", "op": "matches", "values": [".*@x\\.com"]}], "serve": {"variant": "on"}}]});
    let matches = put("m", regex.clone()).await;
    assert_eq!(matches["flagdInProcess"]["available"], false, "{matches}");
    assert_eq!(matches["flagdInProcess"]["reason"], "matches");
    assert!(
        matches["flagdInProcess"]["message"]
            .as_str()
            .unwrap()
            .contains("regular")
    );

    // Under cbor the rollout is not sent to providers declared `concat`
    // (the default `--flagd-bucketing`).
    s.admin(Method::PATCH, ENV, Some(&json!({"bucketing": "cbor"})), &[])
        .await;
    let (_, h, r) = s
        .admin(Method::GET, &format!("{ENV}/flags/r"), None, &[])
        .await;
    assert_eq!(r["flagdInProcess"]["reason"], "bucketing_scheme", "{r}");
    let (_, _, list) = s
        .admin(Method::GET, &format!("{ENV}/flags"), None, &[])
        .await;
    let reasons: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["flagdInProcess"]["reason"])
        .collect();
    assert_eq!(reasons, [&json!("matches"), &json!("bucketing_scheme")]);
    // The field is read-only: the definition is what a PUT sends back.
    let etag = h["etag"].to_str().unwrap().to_owned();
    let (st, _, updated) = s
        .admin(
            Method::PUT,
            &format!("{ENV}/flags/r"),
            Some(&r["definition"]),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{updated}");
    assert_eq!(updated["flagdInProcess"]["available"], false);
    // Segments have no such field.
    let (_, _, seg) = s
        .admin(
            Method::PUT,
            &format!("{ENV}/segments/s"),
            Some(&json!({"rules": []})),
            &[("if-none-match", "*")],
        )
        .await;
    assert!(seg.get("flagdInProcess").is_none(), "{seg}");
}

#[tokio::test]
async fn the_flag_view_follows_the_configured_flagd_bucketing() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start_with(&data, &["--flagd-bucketing", "cbor"]);
    let (_, _, r) = s
        .admin(
            Method::PUT,
            &format!("{ENV}/flags/r"),
            Some(&rollout()),
            &[("if-none-match", "*")],
        )
        .await;
    assert_eq!(r["flagdInProcess"]["reason"], "bucketing_scheme", "{r}");
    s.admin(Method::PATCH, ENV, Some(&json!({"bucketing": "cbor"})), &[])
        .await;
    let (_, _, r) = s
        .admin(Method::GET, &format!("{ENV}/flags/r"), None, &[])
        .await;
    assert_eq!(r["flagdInProcess"]["available"], true, "{r}");
}
