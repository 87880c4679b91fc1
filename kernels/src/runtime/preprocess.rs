//! A tiny WGSL preprocessor: composes shared helpers into kernels and selects the f16 mode.
//!
//! Directives (one per line, leading whitespace allowed; anything else starting with `#` is an
//! error, so typos fail loudly):
//! - `#include "name.wgsl"` — splices a helper from `kernels/src/wgsl/` (each at most once per
//!   kernel; includes may nest).
//! - `#if F16` / `#if !F16` / `#if SUBGROUPS` / `#if !SUBGROUPS` / `#if X_UNIFORM` /
//!   `#if !X_UNIFORM` / `#if X_TEXTURE` / `#if !X_TEXTURE` / `#if H_UNIFORM` / `#if !H_UNIFORM`
//!   / `#if NORM_UNIFORM` / `#if !NORM_UNIFORM` / `#else` / `#endif` — conditional blocks on the
//!   f16 mode, on subgroup support, on how x is read ([`XRead`]), on how a matmul reads LoRA h
//!   and on how `rmsnorm_shrink` reads the norm weight (nestable).
//! - `#texels <binding> <name>` — declares a [`Texels`](super::gpu::Texels) array at
//!   `@group(0) @binding(<binding>)` and its accessor `<name>_texel(e) -> vec4<u32>` (texel e):
//!   with `ShaderFlags::texel_textures` a `texture_2d<u32>` 4096 texels wide (`textureLoad` at
//!   `(e % 4096, e / 4096)`), else `array<vec4<u32>>` in storage.
//! - `#storage_f16 <binding> <name> <read|read_write>` — declares an f16 array at
//!   `@group(0) @binding(<binding>)` and its accessors, so kernels never see the storage type:
//!   `<name>_at(i) -> f32` (element i), `<name>_pair(j) -> vec2<f32>` (elements 2j, 2j+1),
//!   `<name>_quad(j) -> vec4<f32>` (elements 4j..4j+3) and, for `read_write`,
//!   `<name>_set_pair(j, v: vec2<f32>)`. With shader-f16 the array is `array<vec2<f16>>`,
//!   without it `array<u32>` read through `unpack2x16float` — 4 bytes per pair either way, so
//!   buffers and binding sizes are identical in both modes (f16 arrays hold an even count).
//!
//! With F16 the output starts with `enable f16;`.

use super::error::KernelError;

/// Shared helper sources, by include name.
const HELPERS: &[(&str, &str)] = &[
    ("w4.wgsl", include_str!("../wgsl/w4.wgsl")),
    ("qtex.wgsl", include_str!("../wgsl/qtex.wgsl")),
    ("w8.wgsl", include_str!("../wgsl/w8.wgsl")),
    ("reduce.wgsl", include_str!("../wgsl/reduce.wgsl")),
    ("index.wgsl", include_str!("../wgsl/index.wgsl")),
    ("x32.wgsl", include_str!("../wgsl/x32.wgsl")),
    ("matvec_body.wgsl", include_str!("../wgsl/matvec_body.wgsl")),
    (
        "matmul_common.wgsl",
        include_str!("../wgsl/matmul_common.wgsl"),
    ),
];

/// Flags a kernel source is specialised for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShaderFlags {
    /// Use `enable f16;` and `f16` storage (else packed u32).
    pub f16: bool,
    /// The device has subgroup operations (`subgroupBroadcast`, ...) with subgroups of ≥ 8 lanes.
    pub subgroups: bool,
    /// How the kernel reads its input x at binding 1 (`wgsl/x32.wgsl`, `Gpu::x_input`).
    pub x: XRead,
    /// The matmul epilogue reads LoRA h (binding 4, `wgsl/matmul_common.wgsl`) through the
    /// uniform window (`#if H_UNIFORM`) instead of storage.
    pub h_uniform: bool,
    /// `rmsnorm_shrink` reads the norm weight through the uniform window (`#if NORM_UNIFORM`)
    /// instead of storage.
    pub norm_uniform: bool,
    /// `#texels` arrays are textures, else storage buffers (`DeviceProfile::weight_textures`).
    pub texel_textures: bool,
}

/// How a kernel reads its input x (binding 1, `wgsl/x32.wgsl`); chosen per dispatch by
/// `Gpu::x_input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum XRead {
    /// A storage array (`#if` neither `X_UNIFORM` nor `X_TEXTURE`).
    #[default]
    Storage,
    /// The 64 KiB uniform window (`#if X_UNIFORM`).
    Uniform,
    /// A copy in the GPU's scratch `rgba32float` texture (`#if X_TEXTURE`).
    Texture,
}

/// Expands all directives of `src` (kernel id `kernel`, for error messages).
pub fn preprocess(kernel: &str, src: &str, flags: ShaderFlags) -> Result<String, KernelError> {
    let mut out = String::with_capacity(src.len() * 2);
    if flags.f16 {
        out.push_str("enable f16;\n");
    }
    let mut included = Vec::new();
    expand(kernel, kernel, src, flags, &mut included, &mut out, 0)?;
    Ok(out)
}

fn err(kernel: &str, file: &str, line: usize, msg: impl std::fmt::Display) -> KernelError {
    KernelError::Preprocess {
        kernel: kernel.to_string(),
        message: format!("{file}:{}: {msg}", line + 1),
    }
}

fn expand(
    kernel: &str,
    file: &str,
    src: &str,
    flags: ShaderFlags,
    included: &mut Vec<&'static str>,
    out: &mut String,
    depth: usize,
) -> Result<(), KernelError> {
    if depth > 8 {
        return Err(err(kernel, file, 0, "includes nested deeper than 8"));
    }
    // Stack of (this block active, parent active, seen #else).
    let mut stack: Vec<(bool, bool, bool)> = Vec::new();
    let active = |stack: &Vec<(bool, bool, bool)>| stack.last().map(|s| s.0).unwrap_or(true);
    for (n, line) in src.lines().enumerate() {
        let t = line.trim_start();
        if !t.starts_with('#') {
            if active(&stack) {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        // A directive line may end in a `//` comment.
        let t = t.split("//").next().unwrap_or("");
        let mut words = t.split_whitespace();
        let directive = words.next().unwrap_or("");
        let args: Vec<&str> = words.collect();
        match directive {
            "#if" => {
                let cond = match args.as_slice() {
                    ["F16"] => flags.f16,
                    ["!F16"] => !flags.f16,
                    ["SUBGROUPS"] => flags.subgroups,
                    ["!SUBGROUPS"] => !flags.subgroups,
                    ["X_UNIFORM"] => flags.x == XRead::Uniform,
                    ["!X_UNIFORM"] => flags.x != XRead::Uniform,
                    ["X_TEXTURE"] => flags.x == XRead::Texture,
                    ["!X_TEXTURE"] => flags.x != XRead::Texture,
                    ["H_UNIFORM"] => flags.h_uniform,
                    ["!H_UNIFORM"] => !flags.h_uniform,
                    ["NORM_UNIFORM"] => flags.norm_uniform,
                    ["!NORM_UNIFORM"] => !flags.norm_uniform,
                    _ => {
                        return Err(err(
                            kernel,
                            file,
                            n,
                            format!("unknown #if condition {args:?}"),
                        ))
                    }
                };
                let parent = active(&stack);
                stack.push((parent && cond, parent, false));
            }
            "#else" => match stack.last_mut() {
                Some(top) if !top.2 => {
                    top.0 = top.1 && !top.0;
                    top.2 = true;
                }
                _ => return Err(err(kernel, file, n, "#else without #if")),
            },
            "#endif" => {
                if stack.pop().is_none() {
                    return Err(err(kernel, file, n, "#endif without #if"));
                }
            }
            _ if !active(&stack) => {}
            "#include" => {
                let name = args.first().map(|a| a.trim_matches('"')).unwrap_or("");
                let Some(&(key, body)) = HELPERS.iter().find(|(k, _)| *k == name) else {
                    return Err(err(kernel, file, n, format!("unknown include `{name}`")));
                };
                if !included.contains(&key) {
                    included.push(key);
                    expand(kernel, key, body, flags, included, out, depth + 1)?;
                }
            }
            "#storage_f16" => {
                let [binding, name, access] = args.as_slice() else {
                    return Err(err(
                        kernel,
                        file,
                        n,
                        "usage: #storage_f16 <binding> <name> <read|read_write>",
                    ));
                };
                let binding: u32 = binding
                    .parse()
                    .map_err(|_| err(kernel, file, n, format!("bad binding `{binding}`")))?;
                if !matches!(*access, "read" | "read_write") {
                    return Err(err(kernel, file, n, format!("bad access `{access}`")));
                }
                storage_f16(out, binding, name, access, flags.f16);
            }
            "#texels" => {
                let [binding, name] = args.as_slice() else {
                    return Err(err(kernel, file, n, "usage: #texels <binding> <name>"));
                };
                let binding: u32 = binding
                    .parse()
                    .map_err(|_| err(kernel, file, n, format!("bad binding `{binding}`")))?;
                texels(out, binding, name, flags.texel_textures);
            }
            other => return Err(err(kernel, file, n, format!("unknown directive `{other}`"))),
        }
    }
    if !stack.is_empty() {
        return Err(err(kernel, file, src.lines().count(), "unterminated #if"));
    }
    Ok(())
}

fn texels(out: &mut String, binding: u32, name: &str, textures: bool) {
    use std::fmt::Write;
    let (decl, load) = if textures {
        (
            format!("var {name}: texture_2d<u32>"),
            format!("textureLoad({name}, vec2<u32>(e & 4095u, e >> 12u), 0)"),
        )
    } else {
        (
            format!("var<storage, read> {name}: array<vec4<u32>>"),
            format!("{name}[e]"),
        )
    };
    let _ = writeln!(out, "@group(0) @binding({binding}) {decl};");
    let _ = writeln!(
        out,
        "fn {name}_texel(e: u32) -> vec4<u32> {{ return {load}; }}"
    );
}

fn storage_f16(out: &mut String, binding: u32, name: &str, access: &str, f16: bool) {
    use std::fmt::Write;
    let (ty, pair, set) = if f16 {
        (
            "array<vec2<f16>>",
            format!("vec2<f32>({name}[j])"),
            format!("{name}[j] = vec2<f16>(v);"),
        )
    } else {
        (
            "array<u32>",
            format!("unpack2x16float({name}[j])"),
            format!("{name}[j] = pack2x16float(v);"),
        )
    };
    let _ = writeln!(
        out,
        "@group(0) @binding({binding}) var<storage, {access}> {name}: {ty};"
    );
    let _ = writeln!(
        out,
        "fn {name}_pair(j: u32) -> vec2<f32> {{ return {pair}; }}"
    );
    let _ = writeln!(
        out,
        "fn {name}_at(i: u32) -> f32 {{ return {name}_pair(i >> 1u)[i & 1u]; }}"
    );
    let _ = writeln!(
        out,
        "fn {name}_quad(j: u32) -> vec4<f32> {{ return vec4<f32>({name}_pair(2u * j), {name}_pair(2u * j + 1u)); }}"
    );
    if access == "read_write" {
        let _ = writeln!(out, "fn {name}_set_pair(j: u32, v: vec2<f32>) {{ {set} }}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(f16: bool, subgroups: bool, x_uniform: bool) -> ShaderFlags {
        ShaderFlags {
            f16,
            subgroups,
            x: if x_uniform {
                XRead::Uniform
            } else {
                XRead::Storage
            },
            h_uniform: false,
            norm_uniform: false,
            texel_textures: false,
        }
    }

    #[test]
    fn texels_declare_a_texture_or_a_storage_array() {
        let src = "#texels 6 q\n";
        let tex = ShaderFlags {
            texel_textures: true,
            ..flags(false, false, false)
        };
        let on = preprocess("t", src, tex).unwrap();
        let off = preprocess("t", src, flags(false, false, false)).unwrap();
        assert!(
            on.contains("@group(0) @binding(6) var q: texture_2d<u32>;"),
            "{on}"
        );
        assert!(
            on.contains("textureLoad(q, vec2<u32>(e & 4095u, e >> 12u), 0)"),
            "{on}"
        );
        assert!(
            off.contains("@group(0) @binding(6) var<storage, read> q: array<vec4<u32>>;"),
            "{off}"
        );
        assert!(
            off.contains("fn q_texel(e: u32) -> vec4<u32> { return q[e]; }"),
            "{off}"
        );
        assert!(preprocess("t", "#texels q\n", tex).is_err());
        let src = "#if NORM_UNIFORM\nu\n#else\ns\n#endif\n";
        let n = ShaderFlags {
            norm_uniform: true,
            ..flags(false, false, false)
        };
        assert_eq!(preprocess("t", src, n).unwrap(), "u\n");
        assert_eq!(
            preprocess("t", src, flags(false, false, false)).unwrap(),
            "s\n"
        );
    }

    #[test]
    fn if_else_selects_by_mode() {
        let src = "a\n#if F16\nb\n#else\nc\n#endif\nd\n";
        let on = preprocess("t", src, flags(true, false, false)).unwrap();
        let off = preprocess("t", src, flags(false, false, false)).unwrap();
        assert_eq!(on, "enable f16;\na\nb\nd\n");
        assert_eq!(off, "a\nc\nd\n");
        let src = "#if X_UNIFORM\nu\n#else\ns\n#endif\n#if !X_UNIFORM\nn\n#endif\n";
        assert_eq!(
            preprocess("t", src, flags(false, false, true)).unwrap(),
            "u\n"
        );
        assert_eq!(
            preprocess("t", src, flags(false, false, false)).unwrap(),
            "s\nn\n"
        );
        let src = "#if X_UNIFORM\nu\n#else\n#if X_TEXTURE\nt\n#else\ns\n#endif\n#endif\n";
        let x = |x| ShaderFlags {
            x,
            ..flags(false, false, false)
        };
        assert_eq!(preprocess("t", src, x(XRead::Uniform)).unwrap(), "u\n");
        assert_eq!(preprocess("t", src, x(XRead::Texture)).unwrap(), "t\n");
        assert_eq!(preprocess("t", src, x(XRead::Storage)).unwrap(), "s\n");
        let src = "#if H_UNIFORM\nu\n#endif\n#if !H_UNIFORM\ns\n#endif\n";
        let h = |h_uniform| ShaderFlags {
            h_uniform,
            ..flags(false, false, false)
        };
        assert_eq!(preprocess("t", src, h(true)).unwrap(), "u\n");
        assert_eq!(preprocess("t", src, h(false)).unwrap(), "s\n");
    }

    #[test]
    fn nested_if_inside_inactive_block_stays_inactive() {
        let src = "#if !F16\n#if F16\nx\n#else\ny\n#endif\n#endif\n";
        assert_eq!(
            preprocess("t", src, flags(true, false, false)).unwrap(),
            "enable f16;\n"
        );
        assert_eq!(
            preprocess("t", src, flags(false, false, false)).unwrap(),
            "y\n"
        );
    }

    #[test]
    fn include_once_and_errors() {
        let src = "#include \"w4.wgsl\"\n#include \"w4.wgsl\"\n";
        let out = preprocess("t", src, flags(false, false, false)).unwrap();
        assert_eq!(out.matches("fn w4_lo").count(), 1);
        assert!(preprocess("t", "#include \"nope.wgsl\"\n", flags(false, false, false)).is_err());
        assert!(preprocess("t", "#iff F16\n", flags(false, false, false)).is_err());
        assert!(preprocess("t", "#if F16\n", flags(false, false, false)).is_err());
        assert!(preprocess("t", "#endif\n", flags(false, false, false)).is_err());
        assert!(preprocess("t", "#storage_f16 x s read\n", flags(false, false, false)).is_err());
    }

    #[test]
    fn storage_f16_declares_accessors_in_both_modes() {
        let src = "#storage_f16 3 kv read_write\n";
        let on = preprocess("t", src, flags(true, false, false)).unwrap();
        let off = preprocess("t", src, flags(false, false, false)).unwrap();
        assert!(on.contains("@binding(3) var<storage, read_write> kv: array<vec2<f16>>;"));
        assert!(off.contains("@binding(3) var<storage, read_write> kv: array<u32>;"));
        for s in [&on, &off] {
            for f in ["fn kv_at(", "fn kv_pair(", "fn kv_quad(", "fn kv_set_pair("] {
                assert!(s.contains(f), "{f} missing in {s}");
            }
        }
    }
}
