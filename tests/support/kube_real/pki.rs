//! The control plane's own PKI, made with rcgen for each run: a CA, the apiserver's serving
//! certificate (IP SAN 127.0.0.1), a front-proxy CA and client certificate (the
//! controller-manager reads the request-header CA), one ServiceAccount signing key, and a
//! static token file (admin in `system:masters`, the controller-manager's user).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Files the apiserver and the controller-manager are started with, and the tokens.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_crt: PathBuf,
    pub ca_key: PathBuf,
    pub apiserver_crt: PathBuf,
    pub apiserver_key: PathBuf,
    pub front_proxy_ca: PathBuf,
    pub front_proxy_crt: PathBuf,
    pub front_proxy_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
    pub tokens: PathBuf,
    pub admin_token: String,
    pub kcm_token: String,
}

fn ca(name: &str) -> Result<(CertificateParams, KeyPair, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let pem = params.self_signed(&key)?.pem();
    Ok((params, key, pem))
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    name: &str,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
) -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = sans;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// 24 random bytes from the kernel, as hex.
fn token() -> Result<String, String> {
    use std::io::Read;
    let mut buf = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("read /dev/urandom: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

/// Makes every file under `dir`.
pub fn make(dir: &Path) -> Result<Pki, String> {
    let rc = |e: rcgen::Error| format!("rcgen: {e}");
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let p = |name: &str| dir.join(name);

    let (ca_params, ca_key, ca_pem) = ca("astreinte-test-ca").map_err(rc)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut sans = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    for dns in [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
    ] {
        sans.push(SanType::DnsName(dns.try_into().map_err(rc)?));
    }
    let (api_crt, api_key) = leaf(
        &issuer,
        "kube-apiserver",
        sans,
        ExtendedKeyUsagePurpose::ServerAuth,
    )
    .map_err(rc)?;

    let (fp_params, fp_key, fp_pem) = ca("astreinte-test-front-proxy-ca").map_err(rc)?;
    let fp_issuer = Issuer::new(fp_params, fp_key);
    let (fp_crt, fp_client_key) = leaf(
        &fp_issuer,
        "front-proxy-client",
        Vec::new(),
        ExtendedKeyUsagePurpose::ClientAuth,
    )
    .map_err(rc)?;

    let sa = KeyPair::generate().map_err(rc)?;
    let admin_token = token()?;
    let kcm_token = token()?;
    let pki = Pki {
        ca_crt: p("ca.crt"),
        ca_key: p("ca.key"),
        apiserver_crt: p("apiserver.crt"),
        apiserver_key: p("apiserver.key"),
        front_proxy_ca: p("front-proxy-ca.crt"),
        front_proxy_crt: p("front-proxy-client.crt"),
        front_proxy_key: p("front-proxy-client.key"),
        sa_key: p("sa.key"),
        sa_pub: p("sa.pub"),
        tokens: p("tokens.csv"),
        admin_token,
        kcm_token,
    };
    write(&pki.ca_crt, &ca_pem)?;
    write(&pki.ca_key, &ca_key_pem)?;
    write(&pki.apiserver_crt, &api_crt)?;
    write(&pki.apiserver_key, &api_key)?;
    write(&pki.front_proxy_ca, &fp_pem)?;
    write(&pki.front_proxy_crt, &fp_crt)?;
    write(&pki.front_proxy_key, &fp_client_key)?;
    write(&pki.sa_key, &sa.serialize_pem())?;
    write(&pki.sa_pub, &sa.public_key_pem())?;
    // token,user,uid,"groups"
    write(
        &pki.tokens,
        &format!(
            "{},astreinte-admin,astreinte-admin,system:masters\n\
             {},system:kube-controller-manager,system:kube-controller-manager\n",
            pki.admin_token, pki.kcm_token
        ),
    )?;
    Ok(pki)
}
