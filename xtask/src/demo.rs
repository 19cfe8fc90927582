//! `cargo xtask demo`: not built yet (see issue 9); another engineer fills this module.

pub(crate) fn run(_args: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("not built yet: see issue 9")
}
