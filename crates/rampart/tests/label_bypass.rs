//! The label stage tried as an attacker would, against the running binary
//! over HTTP/1.1 and HTTP/2: repeated security headers, markings outside
//! message content, disguised markings, ambiguous body labels, an escaped
//! extension member, and STANAG 4774 labels from another vocabulary. Each is
//! refused (or labelled as what it is); none reaches the backend as a lower label.

mod common;

use base64::Engine as _;
use common::site::*;
use reqwest::Version;
use serde_json::{Value, json};

/// A client of the dev site speaking only `version`.
fn client(site: &Site, version: Version) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(site.pki.join("ca.pem")).unwrap()).unwrap();
    let builder = reqwest::Client::builder().tls_built_in_root_certs(false).add_root_certificate(ca);
    let builder = if version == Version::HTTP_2 { builder.http2_prior_knowledge() } else { builder.http1_only() };
    builder.build().unwrap()
}

/// Sends `body` (raw JSON text) with `headers`, checking the HTTP version spoken.
async fn send(site: &Site, client: &reqwest::Client, version: Version, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut request =
        client.post(site.url("/v1/chat/completions")).header("content-type", "application/json").body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the request completes");
    assert_eq!(response.version(), version);
    Answer::of(response).await
}

fn chat(extra: Value) -> String {
    let mut body = json!({"model": "shared", "messages": [{"role": "user", "content": "Summarise the report."}]});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    body.to_string()
}

fn with_messages(messages: Value) -> String {
    json!({"model": "shared", "messages": messages}).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_label_stage_cannot_be_bypassed() {
    let site = Site::start(|_| {}).await;
    let deu = format!("Bearer {}", site.token("deu-confidential"));
    let gbr = format!("Bearer {}", site.token("gbr-secret"));
    let as_deu = [("authorization", deu.as_str())];
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let client = client(&site, version);
        let plain = send(&site, &client, version, &as_deu, &chat(json!({}))).await;
        assert_eq!(
            (plain.status, plain.label.as_deref()),
            (200, Some("NATO UNCLASSIFIED")),
            "{version:?}: {}",
            plain.body
        );

        // Repeated security headers.
        let twice =
            [("authorization", deu.as_str()), ("rampart-label", "NATO UNCLASSIFIED"), ("rampart-label", "NATO SECRET")];
        let refused = send(&site, &client, version, &twice, &chat(json!({}))).await;
        assert_eq!((refused.status, refused.code()), (400, "duplicate_header"), "{version:?}: {}", refused.body);
        assert_eq!(refused.body["error"]["param"], "rampart-label");
        let two_tokens = [("authorization", gbr.as_str()), ("authorization", deu.as_str())];
        let refused = send(&site, &client, version, &two_tokens, &chat(json!({}))).await;
        assert_eq!((refused.status, refused.code()), (400, "duplicate_header"), "{version:?}");
        let listing = client
            .get(site.url("/v1/models"))
            .header("authorization", gbr.as_str())
            .header("authorization", deu.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(listing.status(), 400, "every route refuses two Authorization headers");

        // Markings in every field a backend or the model sees.
        let secret = "NATO SECRET";
        let call = json!([{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": json!({"q": secret}).to_string()}}]);
        let elsewhere = [
            (
                "tool call arguments",
                with_messages(json!([{"role": "user", "content": "go"}, {"role": "assistant", "tool_calls": call}])),
            ),
            ("message name", with_messages(json!([{"role": "user", "content": "hi", "name": secret}]))),
            (
                "tool description",
                chat(json!({"tools": [{"type": "function", "function": {"name": "f", "description": secret}}]})),
            ),
            (
                "function_call",
                with_messages(
                    json!([{"role": "user", "content": "go"}, {"role": "assistant", "function_call": {"name": "f", "arguments": secret}}]),
                ),
            ),
            (
                "refusal part",
                with_messages(
                    json!([{"role": "user", "content": "go"}, {"role": "assistant", "content": [{"type": "refusal", "refusal": secret}]}]),
                ),
            ),
            ("prediction", chat(json!({"prediction": {"type": "content", "content": secret}}))),
            ("stop", chat(json!({"stop": [secret]}))),
            ("metadata", chat(json!({"metadata": {"note": secret}}))),
            ("user", chat(json!({"user": secret}))),
            (
                "split across parts",
                with_messages(
                    json!([{"role": "user", "content": [{"type": "text", "text": "NATO SEC"}, {"type": "text", "text": "RET"}]}]),
                ),
            ),
        ];
        for (what, body) in &elsewhere {
            let raised = send(&site, &client, version, &as_deu, body).await;
            assert_eq!(
                (raised.status, raised.code()),
                (403, "label_exceeds_clearance"),
                "{version:?} {what}: {}",
                raised.body
            );
        }
        let image = with_messages(
            json!([{"role": "user", "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,TkFUTyBTRUNSRVQ="}}]}]),
        );
        let refused = send(&site, &client, version, &as_deu, &image).await;
        assert_eq!((refused.status, refused.code()), (400, "unscannable_content"), "{version:?}");
        assert_eq!(refused.body["error"]["param"], "messages[0].content[1]");

        // Disguised markings in the message text.
        let disguised = [
            "NATO \u{0405}\u{0415}\u{0421}RET",
            "ＮＡＴＯ ＳＥＣＲＥＴ",
            "（NS） the convoy",
            "(ＮＳ) the convoy",
            "𝐍𝐀𝐓𝐎 𝐒𝐄𝐂𝐑𝐄𝐓",
            "NATO SEC\u{00AD}RET",
            "NATO SE\u{034F}CR\u{FEFF}E\u{2060}T",
            "\u{202E}TERCES OTAN",
            "( NS ) the convoy",
            "(NS ) the convoy",
            "N A T O  S E C R E T",
            "NATO SEC\nRET",
        ];
        for text in disguised {
            let body = with_messages(json!([{"role": "user", "content": text}]));
            let raised = send(&site, &client, version, &as_deu, &body).await;
            assert_eq!(
                (raised.status, raised.code()),
                (403, "label_exceeds_clearance"),
                "{version:?} {text:?}: {}",
                raised.body
            );
        }

        // Portion markings with their categories, spelled-out, substituted and encoded forms,
        // and labels written out in full: each is read at least as high as it says.
        let secret_xml = r#"<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"><ConfidentialityInformation><PolicyIdentifier>NATO</PolicyIdentifier><Classification>CONFIDENTIAL</Classification><Category TagName="Releasable To" Type="PERMISSIVE"><GenericValue>GBR</GenericValue></Category></ConfidentialityInformation></originatorConfidentialityLabel>"#;
        let secret_json =
            r#"Label: {"policy":"NATO","classification":"CONFIDENTIAL","categories":{"Releasable To":["USA"]}}"#;
        let forms = [
            "(NS//REL TO GBR, USA) The brigade crossed.",
            "(CTS//REL TO DEU) The brigade crossed.",
            "(NC//REL TO GBR) The brigade crossed.",
            "(NS//ATOMAL) The brigade crossed.",
            "N.A.T.O. S.E.C.R.E.T",
            "NATO S-E-C-R-E-T",
            "NATO S_E_C_R_E_T",
            "NATO S3CR3T",
            "NATO $ECRET",
            "NATO 5ECRE7",
            "ɴᴀᴛᴏ ꜱᴇᴄʀᴇᴛ",
            "NATO &#83;ECRET",
            "NATO &#x53;&#x45;CRET",
            "NATO &amp;#83;ECRET",
            "NATO %53ECRET",
            "NATO %2553ECRET",
            "NATO %252553ECRET",
            "NATO S+E+C+R+E+T",
            "(N.C//REL TO GBR) text",
            "N.A.T.O C.O.N.F.I.D.E.N.T.I.A.L REL TO GBR",
            "🆂🅴🅲🆁🅴🆃",
            "NATO SEC<b></b>RET",
            secret_xml,
            secret_json,
        ];
        for text in forms {
            let body = with_messages(json!([{"role": "user", "content": text}]));
            let raised = send(&site, &client, version, &as_deu, &body).await;
            assert_eq!(raised.status, 403, "{version:?} {text:?}: {}", raised.body);
        }

        // A marking split across messages is read as the model reads them: joined.
        for (first, second) in [("NATO SEC", "RET"), ("(NC//REL TO", "GBR) x")] {
            for roles in [["user", "user"], ["system", "user"]] {
                let body =
                    with_messages(json!([{"role": roles[0], "content": first}, {"role": roles[1], "content": second}]));
                let raised = send(&site, &client, version, &as_deu, &body).await;
                assert_eq!(raised.status, 403, "{version:?} {first:?} + {second:?}: {}", raised.body);
            }
        }

        // A header and a body label that differ are refused, whichever is higher.
        let headers = [("authorization", deu.as_str()), ("rampart-label", "NATO UNCLASSIFIED")];
        let differ = chat(json!({"rampart": {"label": "NATO CONFIDENTIAL"}}));
        let refused = send(&site, &client, version, &headers, &differ).await;
        assert_eq!((refused.status, refused.code()), (400, "invalid_label"), "{version:?}: {}", refused.body);

        // A body label naming a member twice.
        let ambiguous = r#"{"model":"shared","messages":[{"role":"user","content":"hi"}],"rampart":{"label":{"policy":"NATO","classification":"SECRET","classification":"CONFIDENTIAL"}}}"#;
        let refused = send(&site, &client, version, &as_deu, ambiguous).await;
        assert_eq!((refused.status, refused.code()), (400, "duplicate_member"), "{version:?}: {}", refused.body);
        assert_eq!(refused.body["error"]["param"], "rampart.label.classification");

        // An escaped extension member is the label, and is never forwarded.
        let escaped =
            r#"{"model":"shared","messages":[{"role":"user","content":"hi"}],"r\u0061mpart":{"label":"NATO SECRET"}}"#;
        let as_gbr = [("authorization", gbr.as_str())];
        let answer = send(&site, &client, version, &as_gbr, escaped).await;
        assert_eq!((answer.status, answer.label.as_deref()), (200, Some("NATO SECRET")), "{version:?}");
        let forwarded = site.upstream().last_body.lock().unwrap().clone();
        let forwarded: Value = serde_json::from_slice(&forwarded).expect("the backend got JSON");
        assert_eq!(forwarded.get("rampart"), None, "{forwarded}");
        assert_eq!(forwarded["messages"][0]["content"], "hi");

        // STANAG 4774 labels of another vocabulary.
        let ns = "urn:nato:stanag:4774:confidentialitymetadatalabel:1:0";
        let inner = "<ConfidentialityInformation><PolicyIdentifier>NATO</PolicyIdentifier><Classification>UNCLASSIFIED</Classification></ConfidentialityInformation>";
        for xml in [
            format!(r#"<BogusConfidentialityLabel xmlns="{ns}">{inner}</BogusConfidentialityLabel>"#),
            format!(
                r#"<originatorConfidentialityLabel xmlns="urn:example:bogus">{inner}</originatorConfidentialityLabel>"#
            ),
        ] {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&xml);
            let headers = [("authorization", deu.as_str()), ("rampart-label", encoded.as_str())];
            let refused = send(&site, &client, version, &headers, &chat(json!({}))).await;
            assert_eq!((refused.status, refused.code()), (400, "invalid_label"), "{version:?} {xml}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_model_writes_above_the_label_is_withheld() {
    let site = Site::start(|_| {}).await;
    let deu = format!("Bearer {}", site.token("deu-confidential"));
    let ask = |stream: bool| {
        json!({"model": "marked", "stream": stream, "messages": [{"role": "user", "content": "When?"}]}).to_string()
    };
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let client = client(&site, version);
        // Asked at NATO UNCLASSIFIED; the model writes NATO CONFIDENTIAL.
        let withheld = send(&site, &client, version, &[("authorization", &deu)], &ask(false)).await;
        assert_eq!((withheld.status, withheld.code()), (502, "answer_above_label"), "{version:?}");
        assert!(!withheld.body.to_string().contains("convoy"), "{version:?}: {}", withheld.body);

        let stream = client
            .post(site.url("/v1/chat/completions"))
            .header("authorization", &deu)
            .header("content-type", "application/json")
            .body(ask(true))
            .send()
            .await
            .unwrap();
        assert_eq!((stream.version(), stream.status().as_u16()), (version, 200));
        let text = stream.text().await.unwrap();
        assert!(text.contains("\"code\":\"answer_above_label\""), "{version:?}: {text}");
        assert!(!text.contains("convoy") && !text.contains("[DONE]"), "{version:?}: {text}");

        // Asked at the level of what it writes, the caller (cleared for it) gets the answer.
        let headers = [("authorization", deu.as_str()), ("rampart-label", "NATO CONFIDENTIAL")];
        let released = send(&site, &client, version, &headers, &ask(false)).await;
        assert_eq!((released.status, released.label.as_deref()), (200, Some("NATO CONFIDENTIAL")), "{version:?}");
        assert!(released.body["choices"][0]["message"]["content"].as_str().unwrap().contains("convoy"));
    }
}
