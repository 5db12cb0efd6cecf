//! The OpenFeature provider through the `open-feature` crate's API: values,
//! details with variant, reason and metadata, error codes, and a status
//! that follows the client.

use std::time::Duration;

use open_feature::provider::{FeatureProvider, ProviderStatus};
use open_feature::{
    EvaluationContext, EvaluationErrorCode, EvaluationReason, OpenFeature, StructValue,
};
use serde_json::json;
use vexil_sdk::Client;
use vexil_sdk::openfeature::VexilProvider;
use vexil_test_support::server::{Server, sqlite};

use crate::support::{put_flag, setup};

#[tokio::test]
async fn the_provider_answers_through_the_openfeature_api() {
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let key = setup(&s).await;
    put_flag(
        &s,
        "theme",
        &json!({"variants": {"dark": {"bg": "#000", "sizes": [1, 2], "none": null}}, "defaultServe": {"variant": "dark"}}),
    )
    .await;
    put_flag(
        &s,
        "dark",
        &json!({"variants": {"on": true}, "enabled": false, "defaultServe": {"variant": "on"}}),
    )
    .await;
    let provider = VexilProvider::new(Client::new(&s.base, &key).unwrap());
    let handle = provider.clone();
    let flags = {
        let mut api = OpenFeature::singleton_mut().await;
        // Initialisation waits for the first snapshot.
        api.set_provider(provider).await;
        api.create_client()
    };
    assert_eq!(handle.status(), ProviderStatus::Ready);
    assert_eq!(handle.metadata().name, "vexil");

    let pro = EvaluationContext::default()
        .with_targeting_key("u1")
        .with_custom_field("plan", "pro");
    assert_eq!(
        flags.get_bool_value("checkout", Some(&pro), None).await,
        Ok(true)
    );
    let d = flags
        .get_bool_details("checkout", None, None)
        .await
        .unwrap();
    assert_eq!((d.value, d.variant.as_deref()), (false, Some("off")));
    assert_eq!(d.reason, Some(EvaluationReason::Default));
    let d = flags
        .get_bool_details("checkout", Some(&pro), None)
        .await
        .unwrap();
    assert_eq!(d.reason, Some(EvaluationReason::TargetingMatch));

    let d = flags
        .get_string_details("color", Some(&pro), None)
        .await
        .unwrap();
    assert_eq!(
        (d.value.as_str(), d.variant.as_deref()),
        ("#00f", Some("blue"))
    );
    assert_eq!(d.reason, Some(EvaluationReason::Static));
    assert_eq!(
        d.flag_metadata.values.get("owner"),
        Some(&open_feature::FlagMetadataValue::String("web".into()))
    );
    assert_eq!(flags.get_int_value("limit", None, None).await, Ok(10));
    assert_eq!(flags.get_float_value("limit", None, None).await, Ok(10.0));
    let theme: StructValue = flags.get_struct_value("theme", None, None).await.unwrap();
    assert_eq!(
        theme.fields.get("bg"),
        Some(&open_feature::Value::String("#000".into()))
    );
    assert!(!theme.fields.contains_key("none"));

    let err = flags
        .get_bool_value("missing", None, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, EvaluationErrorCode::FlagNotFound);
    assert!(err.message.unwrap().contains("missing"));
    let err = flags.get_int_value("color", None, None).await.unwrap_err();
    assert_eq!(err.code, EvaluationErrorCode::TypeMismatch);
    // Disabled without an off variant: no value, so the caller's default.
    let err = flags.get_bool_value("dark", None, None).await.unwrap_err();
    assert!(
        matches!(err.code, EvaluationErrorCode::General(ref why) if why.contains("DISABLED")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_provider_that_cannot_reach_its_upstream_is_not_ready() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut provider = VexilProvider::new(Client::new(url, "key-0123456789abcdef").unwrap())
        .with_init_timeout(Duration::from_millis(100));
    provider.initialize(&EvaluationContext::default()).await;
    assert_eq!(provider.status(), ProviderStatus::NotReady);
    let err = provider
        .resolve_bool_value("checkout", &EvaluationContext::default())
        .await
        .unwrap_err();
    assert_eq!(err.code, EvaluationErrorCode::ProviderNotReady);
}
