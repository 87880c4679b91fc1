//! Host-side argument checks shared by the kernel wrappers (K2's kernels).
//!
//! Contract: every wrapper validates its shape arguments before recording a dispatch and returns
//! `KernelError::Shape` naming the argument when a dimension is zero where it must not be, an
//! element count overflows `u32` (WGSL indexes with `u32`), or a bound buffer range is smaller
//! than the bytes the kernel will touch. Device limits (binding size, workgroups per dimension)
//! are checked by the `Recorder`.

use crate::{BufferBinding, KernelError};

/// Bytes visible through a binding (`size`, or the rest of the buffer after `offset`).
pub(crate) fn binding_len(b: &BufferBinding<'_>) -> u64 {
    b.size
        .unwrap_or_else(|| b.buffer.size().saturating_sub(b.offset))
}

/// `Err(Shape)` unless binding `what` holds at least `bytes` bytes.
pub(crate) fn need_bytes(what: &str, b: &BufferBinding<'_>, bytes: u64) -> Result<(), KernelError> {
    let have = binding_len(b);
    if have < bytes {
        return Err(KernelError::Shape(format!(
            "`{what}` holds {have} B, the kernel needs {bytes} B"
        )));
    }
    Ok(())
}

/// Product of `dims` as a `u32` element count, `Err(Shape)` on overflow.
pub(crate) fn elems(what: &str, dims: &[u64]) -> Result<u32, KernelError> {
    let mut n: u64 = 1;
    for &d in dims {
        n = n
            .checked_mul(d)
            .ok_or_else(|| KernelError::Shape(format!("`{what}`: element count overflows")))?;
    }
    u32::try_from(n)
        .map_err(|_| KernelError::Shape(format!("`{what}`: {n} elements exceed u32 indexing")))
}

/// `Err(Shape)` unless `cond`, with the message `msg`.
pub(crate) fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), KernelError> {
    if cond {
        Ok(())
    } else {
        Err(KernelError::Shape(msg()))
    }
}
