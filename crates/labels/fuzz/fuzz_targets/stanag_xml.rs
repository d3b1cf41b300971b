//! STANAG 4774 label and clearance XML on arbitrary input; what parses must round-trip.
#![no_main]

use std::sync::LazyLock;

use rampart_labels::Policies;

static NATO: LazyLock<Policies> = LazyLock::new(Policies::nato);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(label) = NATO.parse_label_xml(text) {
        assert_eq!(NATO.parse_label_xml(&label.to_stanag_xml()).as_ref(), Ok(&label));
    }
    if let Ok(clearance) = NATO.parse_clearance_xml(text) {
        let again = NATO.parse_clearance_xml(&clearance.to_stanag_xml()).expect("an emitted clearance parses");
        assert_eq!(format!("{again:?}"), format!("{clearance:?}"));
    }
});
