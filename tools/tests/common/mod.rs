//! Fixture files the CLI tests share: the tiny Qwen2 model (from its Q4_0 GGUF), its r8 LoRA
//! adapter and its switcher / verifier heads, converted once per test binary into its temp dir.
#![allow(dead_code)] // each test binary uses a subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/tiny/qwen2_tied_gqa")
        .join(rel)
}

fn out(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}_{name}", env!("CARGO_CRATE_NAME")))
}

pub fn tiny_model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let out = out("tiny.kst");
        kestrel_formats::gguf::convert_gguf(
            &fixture("gguf/qwen2_tied_gqa.Q4_0.gguf"),
            &out,
            &kestrel_formats::ConvertOptions::default(),
            &mut |_, _| {},
        )
        .expect("converting the tiny GGUF fixture");
        out
    })
}

fn base() -> kestrel_formats::KstFile {
    kestrel_formats::KstFile::open(tiny_model()).expect("opening the tiny model")
}

pub fn tiny_adapter() -> &'static Path {
    static ADAPTER: OnceLock<PathBuf> = OnceLock::new();
    ADAPTER.get_or_init(|| {
        let out = out("r8_all.kst");
        kestrel_formats::convert_peft(&fixture("adapters/r8_all"), &base(), &out, &mut |_, _| {})
            .expect("converting the r8_all adapter");
        out
    })
}

/// `kind`: "switcher" or "verifier".
pub fn tiny_head(kind: &'static str) -> &'static Path {
    static SWITCHER: OnceLock<PathBuf> = OnceLock::new();
    static VERIFIER: OnceLock<PathBuf> = OnceLock::new();
    let cell = if kind == "switcher" {
        &SWITCHER
    } else {
        &VERIFIER
    };
    cell.get_or_init(|| {
        let out = out(&format!("{kind}.kst"));
        kestrel_formats::convert_head(
            &fixture(&format!("heads/{kind}")),
            &base(),
            &out,
            &mut |_, _| {},
        )
        .expect("converting the head");
        out
    })
}

/// Runs `kestrel <args>`.
pub fn kestrel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kestrel"))
        .args(args)
        .output()
        .expect("running kestrel")
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
