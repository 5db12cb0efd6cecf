//! The cache file through the client: saved as versions arrive, served at
//! once by the next start while the upstream is away, and never served
//! when damaged.

use std::time::Duration;

use vexil_sdk::cache::Cache;
use vexil_sdk::{Client, Context, ErrorCode, Origin, Status};
use vexil_test_support::server::{Server, sqlite};

use crate::support::{eventually, server_version, setup, toggle};

fn cache_file(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "vexil-cache"))
}

#[tokio::test]
async fn a_cached_state_serves_the_next_start_and_a_damaged_one_is_refused() {
    let cache_dir = tempfile::tempdir().unwrap();
    let (data, _dir) = sqlite();
    let s = Server::start(&data);
    let key = setup(&s).await;
    let base = s.base.clone();
    let pro = Context::new().with("plan", "pro");
    {
        let client = Client::builder()
            .upstream(&base, &key)
            .cache_dir(cache_dir.path())
            .build()
            .unwrap();
        client.wait_ready(Duration::from_secs(10)).await.unwrap();
        toggle(&s, "checkout", false).await;
        let v = server_version(&s).await;
        eventually("the change arrives", || client.version() == Some(v)).await;
        let label_file = || cache_file(cache_dir.path());
        eventually("the cache is saved at the new version", || {
            label_file().is_some_and(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                let label = name.trim_end_matches(".vexil-cache");
                Cache::new(cache_dir.path())
                    .read(label)
                    .ok()
                    .flatten()
                    .is_some_and(|seed| seed.version == v)
            })
        })
        .await;
        assert!(!client.bool_value("checkout", &pro, true));
    }
    let v = server_version(&s).await;
    drop(s);

    // The upstream is gone: the cache serves at once.
    let client = Client::builder()
        .upstream(&base, &key)
        .cache_dir(cache_dir.path())
        .build()
        .unwrap();
    let d = client.bool_details("checkout", &pro, true);
    assert_eq!((d.value, d.version), (false, Some(v)));
    assert_eq!(client.followed().unwrap().origin(), Origin::Cache);
    assert_eq!(client.status(), Status::Stale);
    drop(client);

    // Truncated: refused, never served.
    let file = cache_file(cache_dir.path()).unwrap();
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 7]).unwrap();
    let client = Client::builder()
        .upstream(&base, &key)
        .cache_dir(cache_dir.path())
        .build()
        .unwrap();
    let d = client.bool_details("checkout", &pro, true);
    assert_eq!(
        (d.value, d.error_code, d.version),
        (true, Some(ErrorCode::ProviderNotReady), None)
    );
    assert_eq!(client.status(), Status::NotReady);
}
