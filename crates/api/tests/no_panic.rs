//! Parsing and validation never panic, whatever bytes arrive: thousands of
//! deterministic mutations of valid bodies must each parse or give an error.

use rampart_api::{ChatCompletionRequest, CompletionRequest, parse_json};

const SEEDS: [&str; 3] = [
    r#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"user","content":[{"type":"text","text":"a"}]}],"temperature":0.5,"stop":["x"],"stream":true,"stream_options":{"include_usage":true},"max_tokens":9,"n":1,"seed":-3}"#,
    r#"{"model":"m","prompt":["a","b"],"top_p":0.9,"top_k":4,"min_p":0.1,"presence_penalty":1,"frequency_penalty":-1}"#,
    r#"{"model":"m","prompt":"x","stop":"y","max_completion_tokens":4294967295}"#,
];

/// xorshift64*: a fixed sequence, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const INTERESTING: [&[u8]; 12] = [
    b"null",
    b"-1",
    b"1e999",
    b"\"\"",
    b"[]",
    b"{}",
    b"\xff\xfe",
    b"\"\\ud800\"",
    b"true",
    b"99999999999999999999",
    b",",
    b"\"\\u0000\"",
];

#[test]
fn mutated_bodies_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..20_000 {
        let mut body = SEEDS[round % SEEDS.len()].as_bytes().to_vec();
        for _ in 0..=rng.below(4) {
            let at = rng.below(body.len() + 1);
            match rng.below(4) {
                0 if at < body.len() => body[at] = rng.next() as u8,
                1 if at < body.len() => {
                    let end = (at + rng.below(8)).min(body.len());
                    body.drain(at..end);
                }
                _ => {
                    let piece = INTERESTING[rng.below(INTERESTING.len())];
                    body.splice(at..at, piece.iter().copied());
                }
            }
        }
        if let Ok(request) = parse_json::<ChatCompletionRequest>(&body) {
            let _ = request.validate();
        }
        if let Ok(request) = parse_json::<CompletionRequest>(&body) {
            let _ = request.validate();
            let _ = request.single_prompt();
        }
    }
}
