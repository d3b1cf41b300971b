//! A development PKI: a CA, a server certificate for localhost, client
//! certificates and tokens for sample principals, a token issuer key with its
//! JWKS, a directory, an empty CRL and a matching configuration.
//!
//! ```text
//! DIR/rampart.toml            configuration serving the default model over HTTPS with this PKI
//! DIR/ca.pem, DIR/ca.key      the development CA (the key is kept to issue more)
//! DIR/server.pem, .key        the server's certificate (localhost, 127.0.0.1, ::1)
//! DIR/clients/NAME.pem, .key  client certificates (CN = NAME, C = nation)
//! DIR/token-key.pem           the token issuer's Ed25519 private key (PKCS#8)
//! DIR/jwks.json               its public key
//! DIR/tokens/NAME.jwt         a token for each principal
//! DIR/directory.toml          clearance and roles of each certificate subject
//! DIR/crl.pem                 the CA's CRL (empty)
//! ```
//!
//! The configuration also names `DIR/audit-key` (the audit log's signing key)
//! and `DIR/audit/` (the log); `rampart dev init` writes the key, with its
//! verifier key in `DIR/audit.vkey`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rampart_labels::ClearanceJson;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
    RevokedCertParams, SerialNumber,
};

use crate::token::{Claims, mint_token};

/// A sample principal of the development PKI.
#[derive(Debug, Clone)]
pub struct DevPrincipal {
    /// Name: certificate CN, token `sub`, file name.
    pub name: &'static str,
    /// Nation, alpha-3.
    pub nation: &'static str,
    /// Highest classification held.
    pub classification: &'static str,
    /// Roles.
    pub roles: &'static [&'static str],
}

/// The principals `rampart dev init` creates.
pub const DEV_PRINCIPALS: [DevPrincipal; 5] = [
    DevPrincipal { name: "gbr-secret", nation: "GBR", classification: "SECRET", roles: &["analyst"] },
    DevPrincipal { name: "usa-secret", nation: "USA", classification: "SECRET", roles: &["analyst"] },
    DevPrincipal { name: "deu-confidential", nation: "DEU", classification: "CONFIDENTIAL", roles: &["analyst"] },
    DevPrincipal { name: "auditor", nation: "GBR", classification: "SECRET", roles: &["auditor"] },
    DevPrincipal { name: "monitor", nation: "GBR", classification: "UNCLASSIFIED", roles: &["monitor"] },
];

/// The token issuer and audience of the development PKI.
pub const DEV_ISSUER: &str = "rampart-dev";
/// The audience of development tokens.
pub const DEV_AUDIENCE: &str = "rampart";
/// Key id of the development token key.
pub const DEV_KEY_ID: &str = "rampart-dev-1";

impl DevPrincipal {
    /// The principal's clearance: its classification and below, the NATO
    /// context, releasable to its own nation.
    pub fn clearance(&self) -> ClearanceJson {
        ClearanceJson {
            policy: "NATO".into(),
            classifications: vec![self.classification.into()],
            categories: [
                ("Context".to_owned(), ["NATO".to_owned()].into()),
                ("Releasable To".to_owned(), [self.nation.to_owned()].into()),
            ]
            .into(),
        }
    }
}

/// Settings of `rampart dev init`.
pub struct DevOptions {
    /// Address the generated configuration listens on.
    pub listen: String,
    /// The embedded model file the configuration serves.
    pub model: PathBuf,
    /// Lifetime of minted tokens.
    pub token_ttl: Duration,
}

fn err(what: &str) -> impl Fn(rcgen::Error) -> String + '_ {
    move |e| format!("cannot make {what}: {e}")
}

/// Writes `contents` to `path`; a `private` file is created readable by its owner only.
fn write(path: &Path, contents: impl AsRef<[u8]>, private: bool) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    // As `fs::write` does (the umask applies), but a private file is never readable by others.
    let mode = if private { 0o600 } else { 0o666 };
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_ref()))
        .map_err(|e| format!("cannot write '{}': {e}", path.display()))?;
    if private {
        // A file that existed before keeps its mode on open: restrict it.
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot restrict '{}': {e}", path.display()))?;
    }
    Ok(())
}

fn name(common_name: &str, country: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Rampart development PKI");
    if let Some(country) = country {
        dn.push(DnType::CountryName, country);
    }
    dn
}

/// Issues a client certificate for `common_name` (nation in C) signed by the
/// CA at `dir`, valid from `not_before` to `not_after`. Returns (cert PEM, key PEM).
pub fn issue_client_certificate(
    dir: &Path,
    common_name: &str,
    nation: &str,
    validity: (SystemTime, SystemTime),
    serial: u64,
) -> Result<(String, String), String> {
    issue(dir, common_name, nation, Vec::new(), vec![ExtendedKeyUsagePurpose::ClientAuth], validity, serial)
}

/// Issues a site certificate for the site `site_id` (CN = the id, nation in C,
/// valid for localhost and the loopback addresses, for both server and client
/// authentication: a site serves its callers and connects to its peers with it),
/// signed by the CA at `dir` and valid for two years. Returns (cert PEM, key PEM).
pub fn issue_site_certificate(
    dir: &Path,
    site_id: &str,
    nation: &str,
    serial: u64,
) -> Result<(String, String), String> {
    let now = SystemTime::now();
    let names = ["localhost", "127.0.0.1", "::1"].map(str::to_owned).to_vec();
    let usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let validity = (now - Duration::from_secs(3600), now + Duration::from_secs(2 * 365 * 86_400));
    issue(dir, site_id, nation, names, usages, validity, serial)
}

/// Issues a site certificate for `site_id` (see [`issue_site_certificate`]) and
/// writes it to `DIR/sites/SITE.pem`, its key to `DIR/sites/SITE.key` (mode
/// 0600); never overwrites one. Returns the certificate's path.
pub fn write_site_certificate(dir: &Path, site_id: &str, nation: &str) -> Result<PathBuf, String> {
    let sites = dir.join("sites");
    fs::create_dir_all(&sites).map_err(|e| format!("cannot create '{}': {e}", sites.display()))?;
    let (cert_path, key_path) = (sites.join(format!("{site_id}.pem")), sites.join(format!("{site_id}.key")));
    if cert_path.exists() || key_path.exists() {
        return Err(format!("'{}' exists already; it is not overwritten", cert_path.display()));
    }
    // Serial numbers must differ between certificates of one CA: the time in microseconds.
    let serial = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    let (cert, key) = issue_site_certificate(dir, site_id, nation, serial)?;
    write(&cert_path, cert, false)?;
    write(&key_path, key, true)?;
    Ok(cert_path)
}

fn issue(
    dir: &Path,
    common_name: &str,
    nation: &str,
    names: Vec<String>,
    usages: Vec<ExtendedKeyUsagePurpose>,
    validity: (SystemTime, SystemTime),
    serial: u64,
) -> Result<(String, String), String> {
    let ca_pem = fs::read_to_string(dir.join("ca.pem")).map_err(|e| format!("cannot read the dev CA: {e}"))?;
    let ca_key_pem = fs::read_to_string(dir.join("ca.key")).map_err(|e| format!("cannot read the dev CA key: {e}"))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(err("the CA key"))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(err("the CA issuer"))?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err("a key"))?;
    let mut params = CertificateParams::new(names).map_err(err("certificate parameters"))?;
    params.distinguished_name = name(common_name, Some(nation));
    params.not_before = validity.0.into();
    params.not_after = validity.1.into();
    params.serial_number = Some(SerialNumber::from(serial));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = usages;
    let cert = params.signed_by(&key, &issuer).map_err(err("a certificate"))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes a CRL of the CA at `dir` revoking the given serial numbers, valid
/// for two years, as long as the client certificates it covers: a CRL past its
/// nextUpdate refuses them all.
pub fn write_crl(dir: &Path, revoked: &[u64]) -> Result<(), String> {
    write_crl_until(dir, revoked, SystemTime::now() + Duration::from_secs(2 * 365 * 86_400))
}

/// Like [`write_crl`], with the CRL's nextUpdate at `next_update`.
pub fn write_crl_until(dir: &Path, revoked: &[u64], next_update: SystemTime) -> Result<(), String> {
    let ca_pem = fs::read_to_string(dir.join("ca.pem")).map_err(|e| format!("cannot read the dev CA: {e}"))?;
    let ca_key_pem = fs::read_to_string(dir.join("ca.key")).map_err(|e| format!("cannot read the dev CA key: {e}"))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(err("the CA key"))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(err("the CA issuer"))?;
    let now = SystemTime::now();
    let params = CertificateRevocationListParams {
        this_update: (now.min(next_update) - Duration::from_secs(60)).into(),
        next_update: next_update.into(),
        crl_number: SerialNumber::from(now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1)),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|&serial| RevokedCertParams {
                serial_number: SerialNumber::from(serial),
                revocation_time: (now - Duration::from_secs(60)).into(),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(&issuer).map_err(err("the CRL"))?;
    write(&dir.join("crl.pem"), crl.pem().map_err(err("the CRL PEM"))?, false)
}

/// Creates the development PKI in `dir` (which must not hold one already).
pub fn dev_init(dir: &Path, options: &DevOptions) -> Result<(), String> {
    if dir.join("ca.pem").exists() {
        return Err(format!("'{}' already holds a development PKI; choose another directory", dir.display()));
    }
    for sub in [dir.to_path_buf(), dir.join("clients"), dir.join("tokens")] {
        fs::create_dir_all(&sub).map_err(|e| format!("cannot create '{}': {e}", sub.display()))?;
    }
    let now = SystemTime::now();
    let years = |n: u64| now + Duration::from_secs(n * 365 * 86_400);

    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err("the CA key"))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err("CA parameters"))?;
    ca.distinguished_name = name("Rampart development CA", None);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.not_before = (now - Duration::from_secs(3600)).into();
    ca.not_after = years(10).into();
    let ca_cert = ca.self_signed(&ca_key).map_err(err("the CA certificate"))?;
    write(&dir.join("ca.pem"), ca_cert.pem(), false)?;
    write(&dir.join("ca.key"), ca_key.serialize_pem(), true)?;
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err("the server key"))?;
    let mut server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()])
        .map_err(err("server parameters"))?;
    server.distinguished_name = name("localhost", None);
    server.not_before = (now - Duration::from_secs(3600)).into();
    server.not_after = years(2).into();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &issuer).map_err(err("the server certificate"))?;
    write(&dir.join("server.pem"), server_cert.pem(), false)?;
    write(&dir.join("server.key"), server_key.serialize_pem(), true)?;

    let token_key = KeyPair::generate_for(&PKCS_ED25519).map_err(err("the token key"))?;
    write(&dir.join("token-key.pem"), ed25519_pkcs8_pem(&token_key)?, true)?;
    let jwks = serde_json::json!({ "keys": [{
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": DEV_KEY_ID,
        "x": base64_url(token_key.public_key_raw()),
    }]});
    write(&dir.join("jwks.json"), serde_json::to_string_pretty(&jwks).unwrap_or_default(), false)?;

    let mut directory = String::from("# Certificate subjects (CN) of the development PKI: clearance, roles, nation.\n");
    for (serial, principal) in (100u64..).zip(DEV_PRINCIPALS.iter()) {
        let (cert, key) = issue_client_certificate(
            dir,
            principal.name,
            principal.nation,
            (now - Duration::from_secs(3600), years(2)),
            serial,
        )?;
        write(&dir.join("clients").join(format!("{}.pem", principal.name)), cert, false)?;
        write(&dir.join("clients").join(format!("{}.key", principal.name)), key, true)?;
        let claims = dev_claims(principal, options.token_ttl);
        let token = mint_token(&claims, token_key.serialize_pem().as_bytes(), Some(DEV_KEY_ID))?;
        write(&dir.join("tokens").join(format!("{}.jwt", principal.name)), format!("{token}\n"), true)?;
        let clearance = serde_json::to_string(&principal.clearance()).unwrap_or_default();
        let clearance: toml::Value = serde_json::from_str(&clearance).map_err(|e| e.to_string())?;
        let mut entry = toml::Table::new();
        entry.insert("nation".into(), principal.nation.into());
        entry.insert("roles".into(), principal.roles.iter().map(|r| toml::Value::from(*r)).collect::<Vec<_>>().into());
        entry.insert("clearance".into(), clearance);
        let mut table = toml::Table::new();
        table.insert(principal.name.into(), entry.into());
        let mut subjects = toml::Table::new();
        subjects.insert("subjects".into(), table.into());
        directory.push_str(&toml::to_string(&subjects).map_err(|e| e.to_string())?);
        directory.push('\n');
    }
    write(&dir.join("directory.toml"), directory, false)?;
    write_crl(dir, &[])?;
    write(&dir.join("rampart.toml"), dev_config(options), false)
}

/// The claims of a development principal's token.
pub fn dev_claims(principal: &DevPrincipal, ttl: Duration) -> Claims {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Claims {
        sub: principal.name.into(),
        nat: principal.nation.into(),
        clearance: principal.clearance(),
        roles: principal.roles.iter().map(|r| r.to_string()).collect(),
        iss: DEV_ISSUER.into(),
        aud: DEV_AUDIENCE.into(),
        exp: now + ttl.as_secs(),
        nbf: Some(now.saturating_sub(60)),
        iat: Some(now),
    }
}

fn dev_config(options: &DevOptions) -> String {
    format!(
        r#"# Development site: the embedded default model over HTTPS, callers identified by the
# development PKI in this directory (client certificates or bearer tokens in tokens/).
# Every key is documented, with its default, in docs/config.md.

[server]
listen = "{listen}"
[server.tls]
cert = "server.pem"
key = "server.key"

[identity]
jwks = "jwks.json"                 # token verification keys: a file, never fetched
issuer = "{DEV_ISSUER}"
audience = "{DEV_AUDIENCE}"
client_ca = ["ca.pem"]             # roots for client certificates (mutual TLS)
crl = ["crl.pem"]                  # CRL files
directory = "directory.toml"       # certificate subject -> clearance, roles

[audit]
dir = "audit"                      # the tamper-evident audit log (C2SP tlog-tiles), created on first start
signing_key = "audit-key"          # signs its checkpoints; verify with `rampart audit verify audit --vkey audit.vkey`

[labels]
# spif = ["nato-v88.spif"]         # security policies; the first is the default (default: the shipped NATO SPIF)
default_label = "NATO UNCLASSIFIED" # label of requests that declare none

[[models]]
name = "smollm2"
engine = "embedded"
path = "{model}"
threads = 2
parallel = 4
context = 2048
accreditation = "NATO SECRET"      # the highest label this model may process

[collections]
dir = "collections"                # labelled report collections (`rampart collection ingest`)
embedding_model = "{embedding}"    # all-MiniLM-L6-v2 (`rampart model fetch-embedding`)
"#,
        listen = options.listen,
        model = options.model.display(),
        embedding = options.model.with_file_name("all-MiniLM-L6-v2").display(),
    )
}

/// Base64url without padding, as JWKs encode keys.
/// An Ed25519 key as the PKCS#8 every reader takes (RFC 8410: version 1, the
/// seed alone). rcgen writes version 2 with the public key, which OpenSSL 3 and
/// Python's `cryptography` refuse.
fn ed25519_pkcs8_pem(key: &KeyPair) -> Result<String, String> {
    use base64::Engine as _;
    /// SEQUENCE { INTEGER v, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32) } }, up to the seed.
    const PREFIX: [u8; 14] = [0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    let der = key.serialized_der();
    // Version 2 is PREFIX (with version 1) after its outer SEQUENCE's 2-byte header, then the seed.
    let seed = der
        .get(2..16)
        .filter(|head| head[..2] == PREFIX[..2] && head[3..] == PREFIX[3..])
        .and_then(|_| der.get(16..48))
        .ok_or("the token key is not an Ed25519 PKCS#8 key")?;
    let mut v1 = vec![0x30, 0x2e];
    v1.extend_from_slice(&PREFIX);
    v1.extend_from_slice(seed);
    let body = base64::engine::general_purpose::STANDARD.encode(&v1);
    Ok(format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"))
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
