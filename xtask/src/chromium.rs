//! Chromium for the admin page's browser test: `CALLSYNC_CHROMIUM` if it names a file, else
//! `/usr/bin/chromium`, installed with apt (Debian package `chromium`) when missing and root.
//! Also a Japanese font (`fonts-ipafont-gothic`, 3.5 MB), so the test's screenshots in
//! `target/browser/` are readable; the test itself asserts on the DOM and does not need it.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::util::{self, Apt};

const DEFAULT: &str = "/usr/bin/chromium";

/// The path to a Chromium binary, installing it if we can.
pub(crate) fn ensure(apt: &mut Apt) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("CALLSYNC_CHROMIUM").map(PathBuf::from) {
        if path.is_file() {
            return Ok(path);
        }
        eprintln!(
            "xtask: CALLSYNC_CHROMIUM={} is not a file; using {DEFAULT}",
            path.display()
        );
    }
    let path = PathBuf::from(DEFAULT);
    if !path.is_file() {
        apt.install(&["chromium"])?;
        if !path.is_file() {
            bail!("{DEFAULT} is still missing after installing chromium");
        }
    }
    if !has_japanese_font()
        && let Err(err) = apt.install(&["fonts-ipafont-gothic"])
    {
        eprintln!("xtask: warning: no Japanese font ({err:#}); screenshots will show boxes");
    }
    Ok(path)
}

/// Whether fontconfig knows a font for Japanese (`fc-list :lang=ja` lists one).
fn has_japanese_font() -> bool {
    std::process::Command::new("fc-list")
        .arg(":lang=ja")
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.trim_ascii().is_empty())
}

/// `chromium --version`, for the step line.
pub(crate) fn version(path: &std::path::Path) -> String {
    util::version_of(&path.to_string_lossy(), "--version")
        .unwrap_or_else(|| "version unknown".into())
}
