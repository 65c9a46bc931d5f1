//! The `disk` probe: used ratio of space and inodes of a mount, through statvfs.

use super::{Finding, Measurement, Outcome};
use crate::config::DiskSpec;
use crate::metrics::GaugeName;

/// Space and inode use of one file system.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub used_ratio: f64,
    /// `None` when the file system has no fixed inode table (btrfs reports 0 files).
    pub inodes_used_ratio: Option<f64>,
}

pub(super) async fn probe(probe_id: &str, spec: &DiskSpec) -> Finding {
    let path = spec.path.clone();
    let usage = match tokio::task::spawn_blocking(move || usage(&path)).await {
        Ok(Ok(u)) => u,
        Ok(Err(e)) => {
            return Finding::new(
                Outcome::unknown("statvfs_failed"),
                format!("statvfs {}: {}", spec.path.display(), e),
            );
        }
        Err(_) => return Finding::new(Outcome::unknown("internal"), "statvfs task failed"),
    };
    judge(probe_id, spec, usage)
}

fn usage(path: &std::path::Path) -> Result<Usage, rustix::io::Errno> {
    let s = rustix::fs::statvfs(path)?;
    // As df computes it: used / (used + available to unprivileged users).
    let used = s.f_blocks.saturating_sub(s.f_bfree) as f64;
    let avail = s.f_bavail as f64;
    let used_ratio = if used + avail > 0.0 {
        used / (used + avail)
    } else {
        0.0
    };
    let inodes_used_ratio =
        (s.f_files > 0).then(|| s.f_files.saturating_sub(s.f_ffree) as f64 / s.f_files as f64);
    Ok(Usage {
        used_ratio,
        inodes_used_ratio,
    })
}

/// Compares usage with the thresholds; the worse of space and inodes wins.
pub(crate) fn judge(probe_id: &str, spec: &DiskSpec, u: Usage) -> Finding {
    let inodes = u.inodes_used_ratio.unwrap_or(0.0);
    let (ratio, reason_degraded, reason_failed) = if inodes > u.used_ratio {
        (inodes, "inodes_high", "inodes_full")
    } else {
        (u.used_ratio, "disk_usage_high", "disk_full")
    };
    let detail = format!(
        "{:.1} % used, {} inodes used",
        u.used_ratio * 100.0,
        u.inodes_used_ratio
            .map_or("n/a".to_owned(), |r| format!("{:.1} %", r * 100.0))
    );
    let outcome = if ratio >= spec.failed_ratio {
        Outcome::failed(reason_failed)
    } else if ratio >= spec.degraded_ratio {
        Outcome::degraded(ratio, reason_degraded)
    } else {
        Outcome::Healthy
    };
    let mut f = Finding::new(outcome, detail).with(Measurement::new(
        GaugeName::DiskUsedRatio,
        &[("probe", probe_id)],
        u.used_ratio,
    ));
    if let Some(r) = u.inodes_used_ratio {
        f = f.with(Measurement::new(
            GaugeName::DiskInodesUsedRatio,
            &[("probe", probe_id)],
            r,
        ));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DiskSpec {
        DiskSpec {
            path: "/".into(),
            degraded_ratio: 0.70,
            failed_ratio: 0.95,
        }
    }

    #[test]
    fn thresholds_from_seed_004() {
        let at = |used, inodes| {
            judge(
                "d",
                &spec(),
                Usage {
                    used_ratio: used,
                    inodes_used_ratio: inodes,
                },
            )
            .outcome
        };
        assert_eq!(at(0.5, Some(0.1)), Outcome::Healthy);
        assert_eq!(at(0.70, None), Outcome::degraded(0.70, "disk_usage_high"));
        assert_eq!(at(0.2, Some(0.8)), Outcome::degraded(0.8, "inodes_high"));
        assert_eq!(at(0.96, Some(0.1)), Outcome::failed("disk_full"));
    }

    #[tokio::test]
    async fn real_statvfs_of_a_temp_dir() {
        let dir = tempfile::tempdir().unwrap();
        let s = DiskSpec {
            path: dir.path().into(),
            ..spec()
        };
        let f = probe("tmp", &s).await;
        assert!(!matches!(f.outcome, Outcome::Unknown { .. }), "{f:?}");
        let used = f.measurements[0].value;
        assert!((0.0..=1.0).contains(&used));
        let missing = DiskSpec {
            path: dir.path().join("nope"),
            ..spec()
        };
        assert_eq!(
            probe("x", &missing).await.outcome,
            Outcome::unknown("statvfs_failed")
        );
    }
}
