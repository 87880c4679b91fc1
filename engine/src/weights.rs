//! Model weights on the GPU: one plain struct per HF module, uploaded straight from the `.kst`
//! mmap (a copy, never a repack). q|k|v and gate|up are uploaded as row-concatenated matrices
//! (`Matrix::upload_rows`) so one matmul dispatch serves each shared input.

use kestrel_formats::{DType, KstFile, ModelConfig, TensorView};
use kestrel_kernels::matrix::{HostMatrix, Matrix};
use kestrel_kernels::Gpu;

use crate::error::{EngineError, Result};

/// One decoder block (HF `Qwen2DecoderLayer` / `LlamaDecoderLayer`).
pub(crate) struct LayerWeights {
    pub input_layernorm: wgpu::Buffer,          // [hidden] f32
    pub qkv_proj: Matrix,                       // [(H + 2·Hkv)·D, hidden]: rows q | k | v
    pub qkv_bias: Option<wgpu::Buffer>,         // [(H + 2·Hkv)·D] f32 (Qwen2 only)
    pub o_proj: Matrix,                         // [hidden, H·D]
    pub post_attention_layernorm: wgpu::Buffer, // [hidden] f32
    pub gate_up_proj: Matrix,                   // [2·I, hidden]: rows gate | up
    pub down_proj: Matrix,                      // [hidden, I]
}

/// The whole model (HF `Qwen2ForCausalLM` / `LlamaForCausalLM`).
pub(crate) struct ModelWeights {
    pub embed_tokens: Matrix, // [V, hidden]
    pub layers: Vec<LayerWeights>,
    pub norm: wgpu::Buffer,      // [hidden] f32
    pub lm_head: Option<Matrix>, // [V, hidden]; None when tied to embed_tokens
    pub bytes: u64,              // total weight bytes on the GPU
}

impl ModelWeights {
    pub fn lm_head(&self) -> &Matrix {
        self.lm_head.as_ref().unwrap_or(&self.embed_tokens)
    }

    /// Upload every tensor; `progress(done_layers, total_layers)` after each block.
    pub fn load(gpu: &Gpu, file: &KstFile, cfg: &ModelConfig) -> Result<Self> {
        let (h, hkv, d) = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        );
        let hidden = cfg.hidden_size;
        let mut bytes = 0u64;
        let mut up_rows = |name: &str, parts: &[&OwnedOrView<'_>]| -> Result<Matrix> {
            let hosts = parts
                .iter()
                .map(|p| p.host())
                .collect::<Result<Vec<HostMatrix<'_>>>>()?;
            let mat = Matrix::upload_rows(gpu, &hosts)
                .map_err(|e| EngineError::Unsupported(format!("{name}: {e}")))?;
            bytes += parts.iter().map(|p| p.byte_len() as u64).sum::<u64>();
            Ok(mat)
        };
        let embed = matrix_view(file, "model.embed_tokens.weight", cfg.vocab_size, hidden)?;
        let embed_tokens = up_rows("model.embed_tokens.weight", &[&embed])?;
        let lm_head = if cfg.tie_word_embeddings {
            None
        } else {
            let v = matrix_view(file, "lm_head.weight", cfg.vocab_size, hidden)?;
            Some(up_rows("lm_head.weight", &[&v])?)
        };
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let q = matrix_view(file, &format!("{p}.self_attn.q_proj.weight"), h * d, hidden)?;
            let k = matrix_view(
                file,
                &format!("{p}.self_attn.k_proj.weight"),
                hkv * d,
                hidden,
            )?;
            let v = matrix_view(
                file,
                &format!("{p}.self_attn.v_proj.weight"),
                hkv * d,
                hidden,
            )?;
            let qkv_proj = up_rows(&format!("{p}.self_attn.qkv"), &[&q, &k, &v])?;
            let qkv_bias = if cfg.attention_bias {
                let mut b = vector_f32(file, &format!("{p}.self_attn.q_proj.bias"), h * d)?;
                b.extend(vector_f32(
                    file,
                    &format!("{p}.self_attn.k_proj.bias"),
                    hkv * d,
                )?);
                b.extend(vector_f32(
                    file,
                    &format!("{p}.self_attn.v_proj.bias"),
                    hkv * d,
                )?);
                Some(gpu.upload(&format!("{p}.qkv_bias"), bytemuck::cast_slice(&b))?)
            } else {
                None
            };
            let o = matrix_view(file, &format!("{p}.self_attn.o_proj.weight"), hidden, h * d)?;
            let o_proj = up_rows(&format!("{p}.self_attn.o_proj"), &[&o])?;
            let inter = cfg.intermediate_size;
            let g = matrix_view(file, &format!("{p}.mlp.gate_proj.weight"), inter, hidden)?;
            let u = matrix_view(file, &format!("{p}.mlp.up_proj.weight"), inter, hidden)?;
            let gate_up_proj = up_rows(&format!("{p}.mlp.gate_up"), &[&g, &u])?;
            let dn = matrix_view(file, &format!("{p}.mlp.down_proj.weight"), hidden, inter)?;
            let down_proj = up_rows(&format!("{p}.mlp.down_proj"), &[&dn])?;
            let norm_in = vector_f32(file, &format!("{p}.input_layernorm.weight"), hidden)?;
            let norm_post = vector_f32(
                file,
                &format!("{p}.post_attention_layernorm.weight"),
                hidden,
            )?;
            layers.push(LayerWeights {
                // Uniform windows: rmsnorm_shrink_f32 binds these as uniform buffers.
                input_layernorm: gpu
                    .upload_window("input_layernorm", bytemuck::cast_slice(&norm_in))?,
                qkv_proj,
                qkv_bias,
                o_proj,
                post_attention_layernorm: gpu
                    .upload_window("post_attention_layernorm", bytemuck::cast_slice(&norm_post))?,
                gate_up_proj,
                down_proj,
            });
        }
        let norm = vector_f32(file, "model.norm.weight", hidden)?;
        let norm = gpu.upload("model.norm", bytemuck::cast_slice(&norm))?;
        Ok(ModelWeights {
            embed_tokens,
            layers,
            norm,
            lm_head,
            bytes,
        })
    }
}

/// A matrix either borrowed from the mmap or assembled on the host (row concatenation, bf16).
pub(crate) enum OwnedOrView<'a> {
    View(TensorView<'a>),
    Owned {
        dtype: DType,
        m: usize,
        k: usize,
        group_size: usize,
        q: Vec<u8>,
        scales: Vec<u8>,
        mins: Option<Vec<u8>>,
    },
}

impl<'a> OwnedOrView<'a> {
    fn parts(&self) -> (DType, usize, usize, usize, &[u8], &[u8], Option<&[u8]>) {
        match self {
            OwnedOrView::View(v) => {
                let (g, s, mn) = match &v.quant {
                    Some(q) => (q.group_size, q.scales, q.mins),
                    None => (0, &[][..], None),
                };
                (v.dtype, v.shape[0], v.shape[1], g, v.data, s, mn)
            }
            OwnedOrView::Owned {
                dtype,
                m,
                k,
                group_size,
                q,
                scales,
                mins,
            } => (*dtype, *m, *k, *group_size, q, scales, mins.as_deref()),
        }
    }

    pub fn host(&self) -> Result<HostMatrix<'_>> {
        let (dtype, m, k, group_size, q, scales, mins) = self.parts();
        let u = |v: usize| {
            u32::try_from(v)
                .map_err(|_| EngineError::Unsupported(format!("dimension {v} does not fit u32")))
        };
        let (m, k, group_size) = (u(m)?, u(k)?, u(group_size)?);
        Ok(match dtype {
            DType::W4 => HostMatrix::W4 {
                m,
                k,
                group_size,
                q,
                scales,
                mins,
            },
            DType::W8 => HostMatrix::W8 {
                m,
                k,
                group_size,
                q,
                scales,
            },
            DType::F16 => HostMatrix::F16 { m, k, data: q },
            // BF16 was widened to F32 in `matrix_view`.
            DType::F32 | DType::BF16 => HostMatrix::F32 { m, k, data: q },
        })
    }

    fn byte_len(&self) -> usize {
        let (_, _, _, _, q, s, mn) = self.parts();
        q.len() + s.len() + mn.map_or(0, <[u8]>::len)
    }
}

/// A 2-D weight `[m, k]` checked against the config's shape.
pub(crate) fn matrix_view<'a>(
    file: &'a KstFile,
    name: &str,
    m: usize,
    k: usize,
) -> Result<OwnedOrView<'a>> {
    let v = file.tensor(name)?;
    if v.shape != [m, k] {
        return Err(EngineError::Unsupported(format!(
            "{name}: shape {:?}, config expects [{m}, {k}]",
            v.shape
        )));
    }
    if v.dtype == DType::BF16 {
        let data: Vec<u8> = v
            .data
            .chunks_exact(2)
            .flat_map(|b| {
                (f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)).to_le_bytes()
            })
            .collect();
        return Ok(OwnedOrView::Owned {
            dtype: DType::F32,
            m,
            k,
            group_size: 0,
            q: data,
            scales: vec![],
            mins: None,
        });
    }
    Ok(OwnedOrView::View(v))
}

/// A 1-D f32 vector (norm weight, bias), widened from f16/bf16 if stored that way.
pub(crate) fn vector_f32(file: &KstFile, name: &str, len: usize) -> Result<Vec<f32>> {
    let v = file.tensor(name)?;
    if v.shape != [len] {
        return Err(EngineError::Unsupported(format!(
            "{name}: shape {:?}, expected [{len}]",
            v.shape
        )));
    }
    Ok(match v.dtype {
        DType::F32 => v
            .data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        DType::F16 => v
            .data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        DType::BF16 => v
            .data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        d => {
            return Err(EngineError::Unsupported(format!(
                "{name}: dtype {d} for a vector"
            )))
        }
    })
}
