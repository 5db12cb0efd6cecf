//! The admin commands of the CLI against a real server: the README's
//! quick start.

use std::process::Command;

use crate::support::{ADMIN_KEY, Server};

/// Runs `vexil` against `server`; returns (success, stdout, stderr).
fn vexil(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vexil"))
        .args(args)
        .env("VEXIL_URL", &server.base)
        .env("VEXIL_ADMIN_KEY", ADMIN_KEY)
        .env_remove("VEXIL_KEY")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn quick_start_with_the_cli() {
    let (data, _dir) = crate::support::sqlite();
    let s = Server::start(&data);
    let dir = tempfile::tempdir().unwrap();
    let def = dir.path().join("flag.yaml");
    std::fs::write(
        &def,
        "variants: {on: true, off: false}\noffVariant: off\ndefaultServe: {variant: on}\n",
    )
    .unwrap();
    let def = def.to_str().unwrap();

    let (ok, out, err) = vexil(&s, &["flags", "set", "new-checkout", "--file", def]);
    assert!(ok, "{err}");
    assert_eq!(out, "new-checkout: version 1\n");
    let (ok, out, _) = vexil(&s, &["flags", "toggle", "new-checkout", "off"]);
    assert!(ok);
    assert_eq!(out, "new-checkout: off, version 2\n");
    // Setting again replaces, based on the version just read.
    let (ok, out, _) = vexil(&s, &["flags", "set", "new-checkout", "--file", def]);
    assert!(ok);
    assert_eq!(out, "new-checkout: version 3\n");
    let (ok, _, err) = vexil(
        &s,
        &[
            "flags",
            "set",
            "new-checkout",
            "--file",
            def,
            "--if-version",
            "1",
        ],
    );
    assert!(!ok);
    assert!(err.contains("version_mismatch"), "{err}");
    let (_, out, _) = vexil(&s, &["flags", "list"]);
    assert_eq!(out, "new-checkout\tversion 3\ton\n");
    let (_, out, _) = vexil(&s, &["flags", "get", "new-checkout"]);
    let item: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(item["definition"]["offVariant"], "off");

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"variants": {"on": true}, "defaultServe": {"variant": "gone"}}"#,
    )
    .unwrap();
    let (ok, _, err) = vexil(
        &s,
        &["flags", "set", "broken", "--file", bad.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(
        err.contains("/flags/broken/defaultServe/variant: unknown variant `gone`"),
        "{err}"
    );

    let (ok, secret, err) = vexil(
        &s,
        &["keys", "create", "--name", "edge-eu", "--scope", "server"],
    );
    assert!(ok, "{err}");
    assert!(secret.trim().starts_with("vxs_"), "{secret}");
    let (_, out, _) = vexil(&s, &["keys", "list"]);
    assert!(out.contains("edge-eu\tserver"), "{out}");
    assert!(!out.contains(secret.trim()), "secrets are never listed");

    let flagd = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/flagd.json");
    let (ok, out, _) = vexil(&s, &["import", flagd, "--dry-run"]);
    assert!(ok);
    assert!(out.contains("would be created: flag header-color"), "{out}");
    assert!(out.ends_with("dry run: nothing changed\n"), "{out}");
    let (ok, out, _) = vexil(&s, &["import", flagd, "--env", "production"]);
    assert!(ok);
    assert!(out.ends_with("environment version 1\n"), "{out}");
    let export = dir.path().join("export.json");
    let (ok, _, err) = vexil(
        &s,
        &[
            "export",
            "--env",
            "production",
            "--output",
            export.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    assert_eq!(doc["flags"].as_object().unwrap().len(), 3);

    let (ok, out, _) = vexil(&s, &["flags", "delete", "new-checkout"]);
    assert!(ok);
    assert_eq!(out, "new-checkout: deleted\n");
    let (ok, _, err) = vexil(
        &s,
        &[
            "flags",
            "get",
            "new-checkout",
            "--key",
            "wrong-key-0123456789",
        ],
    );
    assert!(!ok);
    assert!(err.contains("unknown API key"), "{err}");
}
