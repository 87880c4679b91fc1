//! `kestrel tokenize` (not implemented yet).

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`kestrel tokenize` is not implemented yet")
}
