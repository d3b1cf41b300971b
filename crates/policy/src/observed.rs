//! What the loaded policies can observe of a question.
//!
//! A Cedar decision depends only on what some policy reads. Principals and
//! roles are told apart only where a policy names them (an entity literal in a
//! scope or a condition); the principal's `roles` attribute and the context's
//! `label` and `label_policy` strings only where a policy reads that
//! attribute. Whatever no policy observes is left out of the question Cedar is
//! asked (see `Authority::decide`), so questions that differ only there share
//! one evaluation and one memoised decision.
//!
//! The analysis walks each policy's JSON form (Cedar's EST) and errs on the
//! side of observing: an attribute named `roles`, `label` or `label_policy`
//! read or tested (`.`, `has`) on any expression counts, `context` used other
//! than by reading one of its attributes (compared whole, say) counts as
//! reading all of it, and a policy that cannot be put in JSON form counts as
//! observing everything.

use std::collections::HashSet;

use cedar_policy::{EntityTypeName, PolicySet};
use serde_json::Value;

/// What some loaded policy observes.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Ids of principals some policy names (`Rampart::Principal::"id"`).
    pub(crate) principals: HashSet<String>,
    /// Ids of roles some policy names (`Rampart::Role::"id"`).
    pub(crate) roles: HashSet<String>,
    /// Some policy reads the principal's `roles` attribute.
    pub(crate) roles_attribute: bool,
    /// Some policy reads `context.label`.
    pub(crate) label: bool,
    /// Some policy reads `context.label_policy`.
    pub(crate) label_policy: bool,
}

impl Observed {
    /// What the policies of `set` observe; `principal` and `role` are the entity types.
    pub(crate) fn of(set: &PolicySet, principal: &EntityTypeName, role: &EntityTypeName) -> Self {
        let mut observed = Observed::default();
        for policy in set.policies() {
            for literal in policy.entity_literals() {
                let id = literal.id().unescaped().to_owned();
                if literal.type_name() == principal {
                    observed.principals.insert(id);
                } else if literal.type_name() == role {
                    observed.roles.insert(id);
                }
            }
            match policy.to_json() {
                Ok(json) => observed.scan(&json),
                Err(_) => observed.everything(),
            }
        }
        observed
    }

    fn everything(&mut self) {
        self.roles_attribute = true;
        self.label = true;
        self.label_policy = true;
    }

    fn attribute(&mut self, name: &str) {
        match name {
            "roles" => self.roles_attribute = true,
            "label" => self.label = true,
            "label_policy" => self.label_policy = true,
            _ => {}
        }
    }

    fn scan(&mut self, value: &Value) {
        match value {
            Value::Object(map) => {
                if map.get("Var").and_then(Value::as_str) == Some("context") {
                    // Reached only when `context` is not the record an attribute is read from.
                    self.everything();
                }
                for (key, inner) in map {
                    match (key.as_str(), inner) {
                        ("." | "has", Value::Object(access)) => self.access(access),
                        _ => self.scan(inner),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| self.scan(item)),
            _ => {}
        }
    }

    /// `{"left": EXPR, "attr": NAME}` (or, for `has`, a path of names).
    fn access(&mut self, access: &serde_json::Map<String, Value>) {
        match access.get("attr") {
            Some(Value::String(name)) => self.attribute(name),
            Some(Value::Array(path)) => path.iter().filter_map(Value::as_str).for_each(|name| self.attribute(name)),
            _ => self.everything(),
        }
        for (key, inner) in access {
            let reads_context = key == "left" && inner.get("Var").and_then(Value::as_str) == Some("context");
            if key != "attr" && !reads_context {
                self.scan(inner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn observed(text: &str) -> Observed {
        let set = PolicySet::from_str(text).unwrap();
        let principal = EntityTypeName::from_str("Rampart::Principal").unwrap();
        let role = EntityTypeName::from_str("Rampart::Role").unwrap();
        Observed::of(&set, &principal, &role)
    }

    #[test]
    fn reading_other_attributes_observes_none_of_these() {
        let o = observed(
            r#"forbid (principal, action, resource) unless { context.releasable && principal.nation == "GBR" };
               forbid (principal, action, resource) when { context has label_level && resource.owner == "USA" };"#,
        );
        assert!(!o.label && !o.label_policy && !o.roles_attribute, "{o:?}");
    }

    #[test]
    fn every_way_of_reading_an_attribute_is_seen() {
        let cases = [
            (r#"forbid (principal, action, resource) when { context.label like "*ATOMAL*" };"#, "label"),
            (r#"forbid (principal, action, resource) when { context["label"] == "x" };"#, "label"),
            (r#"forbid (principal, action, resource) when { context has label };"#, "label"),
            (r#"forbid (principal, action, resource) when { context.label_policy == "NATO" };"#, "label_policy"),
            (r#"forbid (principal, action, resource) when { principal.roles.contains("x") };"#, "roles"),
            (r#"forbid (principal, action, resource) when { principal has roles };"#, "roles"),
            (
                r#"forbid (principal, action, resource) when { (if true then principal else principal).roles == [] };"#,
                "roles",
            ),
            (
                r#"forbid (principal, action, resource) when { (if true then context else context).label == "" };"#,
                "label",
            ),
        ];
        for (text, attribute) in cases {
            let o = observed(text);
            let seen = match attribute {
                "label" => o.label,
                "label_policy" => o.label_policy,
                _ => o.roles_attribute,
            };
            assert!(seen, "{text}: {o:?}");
        }
    }

    #[test]
    fn context_used_whole_observes_all_of_it() {
        for text in [
            r#"forbid (principal, action, resource) when { context == {} };"#,
            r#"forbid (principal, action, resource) when { [context].isEmpty() };"#,
            r#"forbid (principal, action, resource) when { (if true then context else {}).releasable };"#,
        ] {
            let o = observed(text);
            assert!(o.label && o.label_policy, "{text}: {o:?}");
        }
    }

    #[test]
    fn named_principals_and_roles_are_collected_from_scopes_and_conditions() {
        let o = observed(
            r#"forbid (principal == Rampart::Principal::"alice", action, resource);
               forbid (principal in Rampart::Role::"contractor", action, resource);
               forbid (principal, action, resource) when { principal in Rampart::Role::"trainee" || principal == Rampart::Principal::"bob" };"#,
        );
        assert_eq!(o.principals, HashSet::from(["alice".to_owned(), "bob".to_owned()]));
        assert_eq!(o.roles, HashSet::from(["contractor".to_owned(), "trainee".to_owned()]));
        assert!(!o.roles_attribute);
    }
}
