//! The console's files, compiled in: plain HTML, CSS and ES modules, with
//! no build step and nothing fetched from another origin.

/// A file of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Its bytes.
    pub bytes: &'static [u8],
    /// Its media type.
    pub content_type: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const SCRIPT: &str = "text/javascript; charset=utf-8";
const STYLE: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// The file at `path` under `/console/` (`""` is the page itself), if there is one.
pub fn asset(path: &str) -> Option<Asset> {
    let (bytes, content_type): (&'static [u8], _) = match path {
        "" | "index.html" => (include_bytes!("../assets/index.html"), HTML),
        "console.css" => (include_bytes!("../assets/console.css"), STYLE),
        "console.js" => (include_bytes!("../assets/console.js"), SCRIPT),
        "api.js" => (include_bytes!("../assets/api.js"), SCRIPT),
        "ask.js" => (include_bytes!("../assets/ask.js"), SCRIPT),
        "favicon.svg" => (include_bytes!("../assets/favicon.svg"), SVG),
        _ => return None,
    };
    Some(Asset { bytes, content_type })
}

#[cfg(test)]
mod tests {
    use super::asset;

    const SVG_NAMESPACE: &str = "xmlns=\"http://www.w3.org/2000/svg\"";

    #[test]
    fn the_page_and_its_files_are_served_and_nothing_else() {
        let page = std::str::from_utf8(asset("").unwrap().bytes).unwrap();
        for file in ["console.css", "console.js", "api.js", "ask.js", "favicon.svg"] {
            assert!(asset(file).is_some(), "{file}");
        }
        assert!(page.contains("console.js") && page.contains("console.css"));
        for missing in ["../Cargo.toml", "index.htm", "/console.js", "console.js/", "assets/console.js"] {
            assert_eq!(asset(missing), None, "{missing}");
        }
    }

    #[test]
    fn nothing_is_fetched_from_another_origin() {
        for file in ["", "console.css", "console.js", "api.js", "ask.js", "favicon.svg"] {
            // SVG's namespace is a name, not an address fetched.
            let text = std::str::from_utf8(asset(file).unwrap().bytes).unwrap().replace(SVG_NAMESPACE, "");
            for other in ["http://", "https://", "//cdn", "url(", "@import"] {
                assert!(!text.contains(other), "{file:?} names {other}");
            }
        }
    }
}
