//! The marked text reader on arbitrary input: it never panics, and whatever it
//! accepts holds no portion above its document and no marking above its portion.
#![no_main]

use std::sync::LazyLock;

use rampart_collections::source::{self, Format, Input, Limits};
use rampart_labels::Policies;

static NATO: LazyLock<Policies> = LazyLock::new(Policies::nato);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let input = Input { file: "fuzz", id: "fuzz", text, sidecar: None };
    let Ok(documents) = source::parse(&NATO, Format::Marked, &input, &Limits::default()) else { return };
    for document in documents {
        for portion in &document.portions {
            assert!(document.label.dominates(&portion.label));
            let found = NATO.scan_markings(portion.label.policy(), &portion.text);
            assert!(found.is_none_or(|found| portion.label.dominates(&found)));
        }
    }
});
