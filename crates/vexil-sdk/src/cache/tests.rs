//! Unit tests of the cache file: round trips, atomic writes, and files
//! refused when truncated, damaged or another environment's.

use super::*;

fn seed() -> Seed {
    Seed {
        version: 42,
        document: Bytes::from_static(
            br#"{"flags":{"a":{"variants":{"on":true},"defaultServe":{"variant":"on"}}}}"#,
        ),
        keys: Some(KeysEvent {
            project: "default".into(),
            environment: "production".into(),
            keys: Vec::new(),
        }),
    }
}

#[test]
fn a_written_state_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("nested"));
    assert_eq!(cache.read("default/production").unwrap(), None);
    cache.write("default/production", &seed()).unwrap();
    assert_eq!(cache.read("default/production").unwrap(), Some(seed()));
    let mut newer = seed();
    newer.version = 43;
    newer.keys = None;
    cache.write("default/production", &newer).unwrap();
    assert_eq!(cache.read("default/production").unwrap(), Some(newer));
    // One file per label, no temporary file left behind.
    let names: Vec<String> = std::fs::read_dir(cache.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["default%2Fproduction.vexil-cache"]);
}

#[test]
fn labels_cannot_leave_the_directory() {
    let cache = Cache::new("/var/cache/vexil");
    for label in ["../etc/passwd", "..", "a/b", ".hidden", "ü"] {
        let path = cache.path(label).unwrap();
        assert_eq!(
            path.parent(),
            Some(Path::new("/var/cache/vexil")),
            "{label}"
        );
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(!name.starts_with('.') && !name.contains('/'), "{name}");
    }
    assert_eq!(cache.path("").unwrap_err().kind(), ErrorKind::Config);
    assert_eq!(
        cache.path(&"x".repeat(300)).unwrap_err().kind(),
        ErrorKind::Config
    );
}

#[test]
fn a_truncated_file_is_refused_at_every_length() {
    let bytes = encode("env", &seed());
    for len in 0..bytes.len() {
        let err = decode(&bytes[..len], "env").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "length {len}: {err}");
    }
    let err = decode(&bytes[..bytes.len() - 10], "env").unwrap_err();
    assert!(err.message().starts_with("truncated: "), "{err}");
    assert_eq!(decode(&bytes, "env").unwrap(), seed());
}

#[test]
fn a_changed_byte_an_appended_byte_or_another_label_is_refused() {
    let bytes = encode("env", &seed());
    let header = bytes.iter().position(|&b| b == b'\n').unwrap();
    for at in [header + 3, header + 20, bytes.len() - 2] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x20;
        let err = decode(&damaged, "env").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert!(err.message().contains("checksum mismatch"), "{err}");
    }
    let mut longer = bytes.clone();
    longer.push(b'\n');
    assert!(
        decode(&longer, "env")
            .unwrap_err()
            .message()
            .contains("after the")
    );
    let err = decode(&bytes, "other").unwrap_err();
    assert!(err.message().contains("holds `env`, not `other`"), "{err}");
    let err = decode(b"{\"flags\": {}}\n", "env").unwrap_err();
    assert!(err.message().contains("not a Vexil cache file"), "{err}");
    let err = decode(b"vexil-cache 9 1 00\nx", "env").unwrap_err();
    assert!(err.message().contains("format `9`"), "{err}");
}

#[test]
fn reading_a_damaged_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    cache.write("env", &seed()).unwrap();
    let path = cache.path("env").unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = cache.read("env").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(err.message().contains(&path.display().to_string()), "{err}");
    assert!(err.message().contains("truncated"), "{err}");
}
