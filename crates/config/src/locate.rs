//! Finding where a key stands in the TOML text, so errors can name its line.

use std::ops::Range;

use toml_edit::{Document, Item};

use crate::validate::{KeyPath, Segment};

/// The byte span of the key (or, failing that, the value) at `path`.
pub(crate) fn span_of(document: &Document<String>, path: &KeyPath) -> Option<Range<usize>> {
    let mut item: &Item = document.as_item();
    let mut best = None;
    for segment in path.segments() {
        match segment {
            Segment::Key(key) => {
                let table = item.as_table_like()?;
                let (k, value) = table.get_key_value(key)?;
                best = k.span().or_else(|| value.span()).or(best);
                item = value;
            }
            Segment::Index(i) => {
                return match item {
                    Item::ArrayOfTables(tables) => {
                        let table = tables.get(*i)?;
                        descend_table(table, path, table.span().or(best))
                    }
                    Item::Value(toml_edit::Value::Array(array)) => array.get(*i)?.span().or(best),
                    _ => best,
                };
            }
        }
    }
    best
}

/// Continues a lookup inside one table of an array of tables.
fn descend_table(table: &toml_edit::Table, path: &KeyPath, best: Option<Range<usize>>) -> Option<Range<usize>> {
    let rest: Vec<&Segment> = path.segments().iter().skip_while(|s| !matches!(s, Segment::Index(_))).skip(1).collect();
    let Some(Segment::Key(first)) = rest.first() else { return best };
    let (key, value) = table.get_key_value(first)?;
    let mut best = key.span().or_else(|| value.span()).or(best);
    let mut item = value;
    for segment in &rest[1..] {
        match segment {
            Segment::Key(k) => {
                let Some((key, value)) = item.as_table_like().and_then(|t| t.get_key_value(k)) else { break };
                best = key.span().or_else(|| value.span()).or(best);
                item = value;
            }
            Segment::Index(i) => {
                if let Some(v) = item.as_array().and_then(|a| a.get(*i)) {
                    best = v.span().or(best);
                }
                break;
            }
        }
    }
    best
}
