//! Disguised markings: each way of writing a marking so that it still reads
//! as one but no longer matches the text as written is found, and ordinary
//! text is still not taken for a marking.

use proptest::strategy::Strategy;
use rampart_labels::Policies;

/// The classification found in `text`, if any.
fn found(text: &str) -> Option<String> {
    let policies = Policies::nato();
    policies.scan_markings(policies.default_policy(), text).map(|label| label.classification().to_owned())
}

#[test]
fn every_disguise_of_a_secret_marking_is_found() {
    let disguised = [
        ("plain", "NATO SECRET"),
        ("Cyrillic Es and Ie", "NATO \u{0405}\u{0415}\u{0421}RET"),
        ("Cyrillic A and O in the context", "N\u{0410}T\u{041E} SECRET"),
        ("Greek Epsilon and Tau", "NATO S\u{0395}CRE\u{03A4}"),
        ("full width", "ＮＡＴＯ ＳＥＣＲＥＴ"),
        ("mathematical bold", "𝐍𝐀𝐓𝐎 𝐒𝐄𝐂𝐑𝐄𝐓"),
        ("mathematical double-struck", "𝕊𝔼ℂℝ𝔼𝕋"),
        ("soft hyphen", "NATO SEC\u{00AD}RET"),
        ("combining grapheme joiner", "NATO SE\u{034F}CRET"),
        ("byte order mark", "NATO SECR\u{FEFF}ET"),
        ("word joiner", "NATO S\u{2060}ECRET"),
        ("zero width space", "NATO SEC\u{200B}RET"),
        ("combining marks", "NATO S\u{0301}E\u{0308}CRET"),
        ("right-to-left override", "please read \u{202E}TERCES OTAN\u{202C} now"),
        ("letters spaced out", "N A T O  S E C R E T"),
        ("split across lines", "NATO SEC\nRET"),
        ("split by a tab", "NATO SEC\tRET"),
        ("em spaces", "NATO\u{2003}SECRET"),
        ("no-break space inside", "SEC\u{00A0}RET"),
        ("full-width parentheses", "（NS） the text"),
        ("full-width letters in parentheses", "(ＮＳ) the text"),
        ("spaces in a portion", "( NS ) the text"),
        ("trailing space in a portion", "(NS ) the text"),
        ("portion split across lines", "(N\nS) the text"),
        ("digit for a letter", "C0NFIDENTIAL and SECRE\u{0422}"),
    ];
    for (what, text) in disguised {
        let level = found(text);
        assert_eq!(level.as_deref(), Some("SECRET"), "{what}: {text:?}");
    }
}

#[test]
fn disguised_top_secret_and_confidential_keep_their_level() {
    assert_eq!(found("ＣＯＳＭＩＣ ＴＯＰ ＳＥＣＲＥＴ").as_deref(), Some("TOP SECRET"));
    assert_eq!(found("T O P S E C R E T").as_deref(), Some("TOP SECRET"));
    assert_eq!(found("NATO C\u{00AD}ONFIDENTIAL").as_deref(), Some("CONFIDENTIAL"));
    assert_eq!(found("(ＮＣ)").as_deref(), Some("CONFIDENTIAL"));
}

#[test]
fn a_disguised_banner_keeps_its_categories() {
    let policies = Policies::nato();
    let label = policies
        .scan_markings(policies.default_policy(), "ＮＡＴＯ ＳＥＣＲＥＴ ＡＴＯＭＡＬ")
        .expect("a marking is found");
    assert_eq!(label.classification(), "SECRET");
    assert!(label.categories().values().any(|values| values.contains("ATOMAL")), "{:?}", label.categories());
}

#[test]
fn ordinary_text_is_not_a_marking() {
    let ordinary = [
        "The secretary of the committee kept it secret.",
        "SECRETARY GENERAL",
        "A classified ad (see page 3) and a NATO summit.",
        "Top secret recipes, unclassified notes",
        "functions (ns) and durations in ns",
        "ｓｅｃｒｅｔ",
    ];
    for text in ordinary {
        assert_eq!(found(text), None, "{text:?}");
    }
}

proptest::proptest! {
    /// Reading disguises never lowers what the plain reading finds, and never panics, on text mixing
    /// marking words, look-alikes, invisible and combining code points, spaces and newlines.
    #[test]
    fn the_scanner_finds_at_least_what_the_plain_reading_finds(
        pieces in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(vec!["NATO", "COSMIC", "SECRET", "TOP", "CONFIDENTIAL", "(NS)", "(NC)", "ATOMAL", "Releasable To", "GBR"]).prop_map(str::to_owned),
                proptest::sample::select(vec![" ", "\n", "\t", "\u{00AD}", "\u{202E}", "\u{0301}", "\u{FEFF}", "(", ")", "\u{0415}", "Ｓ", "𝐒", "secretary"]).prop_map(str::to_owned),
                "\\PC{0,6}",
            ],
            0..12,
        )
    ) {
        let text = pieces.concat();
        let policies = Policies::nato();
        let policy = policies.default_policy();
        let scanned = policies.scan_markings(policy, &text);
        if let Some(plain) = policy.detect_markings(&text) {
            let scanned = scanned.expect("found as written, so found by the scanner");
            proptest::prop_assert!(scanned.dominates(&plain), "{text:?}");
        }
    }
}

#[test]
fn spelled_out_substituted_and_encoded_markings_are_found() {
    let forms = [
        ("letters split by dots", "N.A.T.O. S.E.C.R.E.T"),
        ("letters split by hyphens", "NATO S-E-C-R-E-T"),
        ("letters split by underscores", "NATO S_E_C_R_E_T"),
        ("digits for letters", "NATO S3CR37"),
        ("symbols for letters", "NATO $ECRET"),
        ("digits and dots", "5.3.C.R.3.7"),
        ("small capitals", "ɴᴀᴛᴏ ꜱᴇᴄʀᴇᴛ"),
        ("decimal character references", "NATO &#83;&#69;CRET"),
        ("hexadecimal character references", "NATO &#x53;ECRET"),
        ("named character references", "(NS&sol;/REL TO GBR)"),
        ("escaped twice", "NATO &amp;#83;ECRET"),
        ("percent-encoding", "NATO %53%45CRET"),
        ("percent-encoding twice", "NATO %2553ECRET"),
        ("portion with releasability", "(NS//REL TO GBR, USA) The brigade crossed."),
        ("portion with a special category", "(NS//ATOMAL) text"),
        ("portion marking spelled out", "(N.S.) text"),
        ("letters split by plus signs", "NATO S+E+C+R+E+T"),
        ("letters split by stars", "NATO S*E*C*R*E*T"),
        ("letters split by commas", "NATO S,E,C,R,E,T"),
        ("letters split by middle dots", "NATO S·E·C·R·E·T"),
        ("letters split by tildes", "NATO S~E~C~R~E~T"),
        ("a colon inside", "NATO SEC:RET"),
        ("quotes inside", "NATO SEC'RET and SEC\"RET"),
        ("markdown emphasis inside", "NATO **SEC**RET"),
        ("a backtick inside", "NATO S`E`CRET"),
        ("question marks inside", "NATO S?E?C?R?E?T"),
        ("semicolons inside", "NATO S;E;C;R;E;T"),
        ("a backslash inside", "NATO SEC\\RET"),
        ("angle brackets inside", "NATO SEC<>RET"),
        ("markup inside", "NATO SEC<b></b>RET"),
        ("markdown around a portion", "(**NS**) text"),
        ("negative squared letters", "🆂🅴🅲🆁🅴🆃"),
        ("regional indicators", "🇸🇪🇨🇷🇪🇹"),
        (
            "invisible tag characters",
            "\u{E004E}\u{E0041}\u{E0054}\u{E004F} \u{E0053}\u{E0045}\u{E0043}\u{E0052}\u{E0045}\u{E0054}",
        ),
        ("a rupee sign for an R", "5EC₹ET"),
        ("encoded three times", "NATO %252553ECRET"),
        ("encoded in mixed layers", "NATO %2526%252383%253BECRET"),
        ("a reference without its semicolon", "NATO &#83ECRET"),
        ("a hexadecimal reference running into hex letters", "NATO &#X53ECRET"),
        ("a portion marking in square brackets", "[NS] the convoy"),
        ("a portion marking in braces", "{NS} the convoy"),
        ("a portion marking in angle brackets", "<NS> the convoy"),
        ("a percent-u escape", "NATO %u0053ECRET"),
        ("a backslash-u escape", "NATO \\u0053ECRET"),
        ("a backslash-x escape", "NATO \\x53ECRET"),
    ];
    for (what, text) in forms {
        assert!(found(text).as_deref().is_some_and(|c| c == "SECRET"), "{what}: {text:?} read as {:?}", found(text));
    }
}

#[test]
fn portion_markings_keep_their_categories_and_context() {
    let policies = Policies::nato();
    let policy = policies.default_policy();
    let read = |text: &str| policies.scan_markings(policy, text).unwrap();
    assert_eq!(read("(NS//REL TO GBR, USA) x"), policies.parse_label("NATO SECRET REL TO GBR, USA").unwrap());
    assert_eq!(read("(CTS//REL TO DEU) x"), policies.parse_label("COSMIC TOP SECRET REL TO DEU").unwrap());
    assert_eq!(read("(NS//ATOMAL) x"), policies.parse_label("NATO SECRET ATOMAL").unwrap());
    assert_eq!(read("(NS) x"), policies.parse_label("NATO SECRET").unwrap());
    // An inside that states categories it does not spell readably is releasable to nobody.
    let nobody = |text: &str| read(text).categories().get("Releasable To").is_some_and(|r| r.is_empty());
    for text in [
        "(NS//NOT A CATEGORY) x",
        "(NS/ x",
        "(N.C//REL TO GBR) text",
        "(N C//REL TO GBR) text",
        "( NC //REL TO GBR) text",
        "(N.C//ATOMAL) text",
        "N.A.T.O C.O.N.F.I.D.E.N.T.I.A.L REL TO GBR",
        "C.O.N.F.I.D.E.N.T.I.A.L ATOMAL",
    ] {
        assert!(nobody(text), "{text:?} read as {:?}", read(text));
    }
    // Other brackets are read as parentheses, categories and all.
    assert_eq!(read("[NC//REL TO GBR] text"), policies.parse_label("NATO CONFIDENTIAL REL TO GBR").unwrap());
    // A long releasability list is read whole.
    let long = format!("(NC//REL TO {}GBR) text", "GBR, ".repeat(100));
    assert_eq!(read(&long), policies.parse_label("NATO CONFIDENTIAL REL TO GBR").unwrap());
    assert!(nobody(&format!("(NC//REL TO {}GBR) text", "GBR, ".repeat(1000))), "cut short: releasable to nobody");
    // A digit for a letter inside a category is not read as the nation it spells.
    let g8r = read("(NC//REL TO G8R) text");
    assert!(g8r.categories().get("Releasable To").is_none_or(|r| !r.contains("DEU")), "{g8r:?}");
}
