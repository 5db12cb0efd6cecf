//! Tests of `json`.

use serde::Serialize;

use super::*;

#[test]
fn a_failing_value_is_written_as_null() {
    struct Fails;
    impl Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no"))
        }
    }
    let mut out = b"[1,".to_vec();
    write(&mut out, &Fails);
    out.push(b']');
    assert_eq!(out, b"[1,null]");
    assert_eq!(encode(&Fails), b"null");
}

#[test]
fn bodies_are_objects_by_their_first_byte() {
    for (body, object, blank) in [
        (&b""[..], false, true),
        (b" \t\r\n", false, true),
        (b"{", true, false),
        (b" \n{}", true, false),
        (b"[{}]", false, false),
        (b"null", false, false),
    ] {
        assert_eq!(
            (is_json_object(body), is_blank(body)),
            (object, blank),
            "{body:?}"
        );
    }
}
