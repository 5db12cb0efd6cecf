//! The admin commands of the CLI against a real server: the README's
//! quick start.

use std::process::Command;

use crate::support::{ADMIN_KEY, Server};

/// Runs `vexil` against `server`; returns (success, stdout, stderr).
fn vexil(server: &Server, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(crate::BIN)
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

// issue 12, item 13: the README's quick start works as written, block by
// block in order, on a fresh clone: the `vexil` commands find the binary
// where `cargo run --release` puts it, and curl's requests succeed. Only the
// server's address (the README's 8080; here a free port) and the printed
// admin key are filled in.
#[test]
fn readme_quick_start_runs_as_written() {
    use std::io::BufRead;
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let start = readme.find("## Quick start").unwrap();
    let end = start + readme[start..].find("\n## ").unwrap();
    let section = &readme[start..end];
    let blocks: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks[0].trim(), "cargo run --release -p vexil -- serve");
    let expected_eval = section
        .split("```json\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap()
        .trim();

    // A fresh clone: its examples, and the binary where cargo put it.
    let clone = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(format!("{root}/examples"), clone.path().join("examples")).unwrap();
    std::fs::create_dir_all(clone.path().join("target/release")).unwrap();
    std::os::unix::fs::symlink(crate::BIN, clone.path().join("target/release/vexil")).unwrap();
    let vexil_env = [
        "VEXIL_ADMIN_KEY",
        "VEXIL_KEY",
        "VEXIL_URL",
        "VEXIL_ENV",
        "VEXIL_PROJECT",
        "VEXIL_FLAGS",
        "VEXIL_DATA_DIR",
        "VEXIL_DATABASE_URL",
    ];
    let mut server = Command::new(crate::BIN);
    server
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(clone.path())
        .env("VEXIL_LOG", "warn")
        .stdout(std::process::Stdio::piped());
    for v in vexil_env {
        server.env_remove(v);
    }
    let mut server = server.spawn().unwrap();
    let mut lines = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let mut key = None;
    let addr = loop {
        let line = lines.next().expect("server output").unwrap();
        if let Some(k) = line.strip_prefix("admin key (shown once, store it now): ") {
            key = Some(k.to_owned());
        }
        if let Some(a) = line.strip_prefix("vexil listening on http://") {
            break a.to_owned();
        }
    };
    let key = key.expect("the admin key is printed on first start");
    std::thread::spawn(move || for _ in lines {});

    // One terminal for the rest; curl fails on an HTTP error.
    let mut script = String::from(
        "set -euo pipefail\ncurl() { command curl --silent --show-error --fail-with-body \"$@\"; }\n",
    );
    for block in &blocks[1..] {
        script.push_str(
            &block
                .replace("vxa_…", &key)
                .replace("127.0.0.1:8080", &addr),
        );
    }
    let mut bash = Command::new("bash");
    bash.args(["-c", &script]).current_dir(clone.path());
    for v in vexil_env {
        bash.env_remove(v);
    }
    // The CLI's default URL is the README's 8080: point it at this server.
    bash.env("VEXIL_URL", format!("http://{addr}"));
    let out = bash.output().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("new-checkout"), "{stdout}");
    assert!(stdout.trim_end().ends_with(expected_eval), "{stdout}");
    assert!(stdout.contains(r#""key":"dark-mode""#), "{stdout}");
}
