//! Where the control plane's programs come from: kube-apiserver and kube-controller-manager
//! v1.26.4 unpacked (SHA256SUMS checked) by `scripts/k8s-bin` into `target/k8s-bin`, from
//! `$ASTREINTE_K8S_BIN` or `../shared/k8s`; etcd from Debian's `etcd-server`. A missing one is
//! an error naming exactly what is missing and where it was looked for: never a silent skip.

use std::path::PathBuf;
use std::process::Command;

/// The checked programs.
#[derive(Debug, Clone)]
pub struct Bins {
    pub apiserver: PathBuf,
    pub controller_manager: PathBuf,
    pub etcd: PathBuf,
}

/// Runs `scripts/k8s-bin` (a no-op once `target/k8s-bin` is checked) and returns the programs.
pub fn locate() -> Result<Bins, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/k8s-bin");
    let source = match std::env::var_os("ASTREINTE_K8S_BIN") {
        Some(dir) => format!("ASTREINTE_K8S_BIN={}", PathBuf::from(dir).display()),
        None => format!(
            "{} (the default; set ASTREINTE_K8S_BIN to use another folder)",
            root.join("../shared/k8s").display()
        ),
    };
    let out = Command::new(&script)
        .current_dir(&root)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "the Kubernetes binaries (kube-apiserver, kube-controller-manager v1.26.4) are missing: \
             looked in {source}; {} said: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let etcd = PathBuf::from(astreinte::testbed::etcd::ETCD);
    if !etcd.exists() {
        return Err(format!(
            "{} is missing: run `apt-get install -y etcd-server` (scripts/test does it)",
            etcd.display()
        ));
    }
    let bins = Bins {
        apiserver: dir.join("kube-apiserver"),
        controller_manager: dir.join("kube-controller-manager"),
        etcd,
    };
    for b in [&bins.apiserver, &bins.controller_manager] {
        if !b.exists() {
            return Err(format!(
                "{} is missing after {} (looked in {source})",
                b.display(),
                script.display()
            ));
        }
    }
    Ok(bins)
}
