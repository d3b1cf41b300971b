//! Configurations made from a plain description, for the property tests and the benchmark.

use std::fmt::Write as _;

/// A site of a generated configuration.
#[derive(Debug, Clone)]
pub struct SiteSpec {
    pub jurisdiction: &'static str,
    pub operators: Vec<&'static str>,
    pub security_level: u8,
    pub accreditation: &'static str,
    pub models: Vec<String>,
}

/// A residency rule of a generated configuration.
#[derive(Debug, Clone)]
pub struct ResidencySpec {
    pub nation: &'static str,
    pub from_label: Option<&'static str>,
    pub jurisdictions: Vec<&'static str>,
}

/// One `any_of` clause of a generated placement rule.
#[derive(Debug, Clone)]
pub struct ClauseSpec {
    pub operators: Option<Vec<&'static str>>,
    pub min_security_level: Option<u8>,
    pub jurisdictions: Option<Vec<&'static str>>,
}

/// A placement rule of a generated configuration.
#[derive(Debug, Clone)]
pub struct PlacementSpec {
    pub owner: &'static str,
    pub any_of: Vec<ClauseSpec>,
}

fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The TOML of a site `site-0` (this one, serving its models through one backend)
/// and peers `site-1`..., with the rules and the models' owners.
pub fn config(
    sites: &[SiteSpec],
    residency: &[ResidencySpec],
    placement: &[PlacementSpec],
    owners: &[(String, &str)],
) -> String {
    let mut toml = String::from(concat!(
        "[server]\nlisten = \"127.0.0.1:8080\"\n[server.tls]\ncert = \"s.pem\"\nkey = \"s.key\"\n",
        "[identity]\nclient_ca = [\"ca.pem\"]\ndirectory = \"d.toml\"\n[audit]\ndir = \"audit\"\nsigning_key = \"k\"\n",
        "[federation]\ncert = \"s.pem\"\nkey = \"s.key\"\nca = \"ca.pem\"\n\n[site]\nid = \"site-0\"\n\n",
    ));
    let local: Vec<&str> = sites[0].models.iter().map(String::as_str).collect();
    if !local.is_empty() {
        writeln!(toml, "[[backends]]\nname = \"local\"\nurl = \"http://127.0.0.1:9/v1\"\nmodels = {}\n", list(&local))
            .unwrap();
    }
    for (model, owner) in owners {
        writeln!(toml, "[[models]]\nname = \"{model}\"\nengine = \"remote\"\nowner = \"{owner}\"\n").unwrap();
    }
    for (i, site) in sites.iter().enumerate() {
        writeln!(
            toml,
            "[[sites]]\nid = \"site-{i}\"\njurisdiction = \"{}\"\noperators = {}\nsecurity_level = {}\naccreditation = \"{}\"",
            site.jurisdiction,
            list(&site.operators),
            site.security_level,
            site.accreditation
        )
        .unwrap();
        if i == 0 {
            toml.push_str(if local.is_empty() { "\n" } else { "backends = [\"local\"]\n\n" });
        } else {
            let models: Vec<&str> = site.models.iter().map(String::as_str).collect();
            writeln!(
                toml,
                "models = {}\npeer = \"https://site-{i}.example:8443\"\nkey_sha256 = [\"{i:064x}\"]\n",
                list(&models)
            )
            .unwrap();
        }
    }
    for rule in residency {
        writeln!(toml, "[[residency]]\nnation = \"{}\"\njurisdictions = {}", rule.nation, list(&rule.jurisdictions))
            .unwrap();
        if let Some(from) = rule.from_label {
            writeln!(toml, "from_label = \"{from}\"").unwrap();
        }
        toml.push('\n');
    }
    for rule in placement {
        let clauses: Vec<String> = rule
            .any_of
            .iter()
            .map(|c| {
                let mut keys = Vec::new();
                if let Some(ops) = &c.operators {
                    keys.push(format!("operators = {}", list(ops)));
                }
                if let Some(level) = c.min_security_level {
                    keys.push(format!("min_security_level = {level}"));
                }
                if let Some(j) = &c.jurisdictions {
                    keys.push(format!("jurisdictions = {}", list(j)));
                }
                format!("{{ {} }}", keys.join(", "))
            })
            .collect();
        writeln!(toml, "[[placement]]\nowner = \"{}\"\nany_of = [{}]\n", rule.owner, clauses.join(", ")).unwrap();
    }
    toml
}
