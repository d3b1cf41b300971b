//! What the benchmarks append: entries shaped like the gateway's.

use rampart_audit::entry::{Caller, Entry, Phase, VERSION, sha256_hex};

/// The `i`th entry: an allowed chat completion, as the gateway records one (about 520 bytes).
pub fn entry(i: u64) -> Vec<u8> {
    Entry {
        v: VERSION,
        time_ms: 1_795_000_000_000 + i,
        request_id: format!("{i:032x}"),
        phase: Phase::Complete,
        caller: Some(Caller { subject: "gbr-secret".into(), nation: "GBR".into(), roles: vec!["analyst".into()] }),
        action: "infer".into(),
        model: Some("smollm2".into()),
        backend: Some("embedded".into()),
        request_label: Some("NATO SECRET".into()),
        response_label: Some("NATO SECRET".into()),
        allowed: true,
        policies: vec!["rampart/infer".into()],
        code: None,
        status: 200,
        prompt_tokens: Some(31),
        completion_tokens: Some(128),
        duration_us: 812_345,
        request_sha256: Some(sha256_hex(&i.to_le_bytes())),
        response_sha256: Some(sha256_hex(&(i + 1).to_le_bytes())),
        forwarded_to: None,
        forwarded_by: None,
        retrieved: None,
        client_request_id: None,
    }
    .encode()
}
