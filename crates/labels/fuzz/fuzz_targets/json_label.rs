//! JSON labels and clearances on arbitrary input; what parses must round-trip.
#![no_main]

use std::sync::LazyLock;

use rampart_labels::Policies;

static NATO: LazyLock<Policies> = LazyLock::new(Policies::nato);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(label) = NATO.parse_label_json(text) {
        assert_eq!(NATO.label_from_json(&label.to_json()).as_ref(), Ok(&label));
    }
    let _ = NATO.parse_clearance(text);
});
