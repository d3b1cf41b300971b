//! Banner and portion markings, and markings found in free text, on arbitrary input.
#![no_main]

use std::sync::LazyLock;

use rampart_labels::Policies;

static NATO: LazyLock<Policies> = LazyLock::new(Policies::nato);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let policy = NATO.default_policy();
    if let Ok(label) = policy.parse_marking(text) {
        // A parsed marking's own banner reads back as the same label.
        assert_eq!(policy.parse_marking(&label.banner()).as_ref(), Ok(&label));
    }
    let plain = policy.detect_markings(text);
    // Reading disguises never lowers what the plain reading found.
    let scanned = NATO.scan_markings(policy, text);
    if let Some(plain) = plain {
        let scanned = scanned.expect("what is found as written is found by the scanner");
        assert!(scanned.dominates(&plain), "{text:?}");
    }
});
