//! The SPIF parser on arbitrary input: it must return a policy or an error, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(policy) = rampart_labels::SecurityPolicy::from_spif(text)
    {
        // Whatever loads must also serve: finding its markings in text.
        let _ = std::sync::Arc::new(policy).detect_markings(text);
    }
});
