//! Adapter choice: which of the system's wgpu adapters Kestrel runs on.
//!
//! Contract:
//! - With no preference, a real GPU wins, in the order discrete, integrated, virtual, CPU (Mesa
//!   lavapipe), other. Only the primary backends (Vulkan, Metal, DX12) are enumerated unless the
//!   preference names `gl`/`gles`.
//! - A preference (`GpuOptions::adapter`, else env `KESTREL_ADAPTER`) is matched case-insensitively
//!   against, in order: the backend name (`vulkan`, `metal`, `dx12`, `gl`), the device type
//!   (`cpu`, `discrete`, `integrated`), then a substring of the adapter name (`llvmpipe`,
//!   `nvidia`, ...). No match is `KernelError::NoAdapter` listing what was seen.

use super::error::KernelError;

/// Environment variable naming the preferred adapter.
pub const ENV_ADAPTER: &str = "KESTREL_ADAPTER";

fn backend_name(b: wgpu::Backend) -> &'static str {
    match b {
        wgpu::Backend::Vulkan => "vulkan",
        wgpu::Backend::Metal => "metal",
        wgpu::Backend::Dx12 => "dx12",
        wgpu::Backend::Gl => "gl",
        wgpu::Backend::BrowserWebGpu => "webgpu",
        wgpu::Backend::Noop => "noop",
    }
}

fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete",
        wgpu::DeviceType::IntegratedGpu => "integrated",
        wgpu::DeviceType::VirtualGpu => "virtual",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

/// One-line description of an adapter, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) [vulkan, cpu]`.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} [{}, {}, driver {} {}]",
        info.name,
        backend_name(info.backend),
        type_name(info.device_type),
        info.driver,
        info.driver_info
    )
}

fn matches(info: &wgpu::AdapterInfo, pref: &str) -> bool {
    let p = pref.to_ascii_lowercase();
    let backend = backend_name(info.backend);
    if p == backend || (p == "gles" && backend == "gl") {
        return true;
    }
    if p == type_name(info.device_type) {
        return true;
    }
    info.name.to_ascii_lowercase().contains(&p)
}

/// The backends an instance for `pref` starts: GL only when asked for by name, else the primary
/// ones (Vulkan, Metal, DX12). Not starting GL matters: its EGL probe prints driver errors on
/// machines without a display, and compute needs no window system.
pub fn backends(pref: Option<&str>) -> wgpu::Backends {
    let wants_gl = pref
        .map(|p| matches!(p.to_ascii_lowercase().as_str(), "gl" | "gles"))
        .unwrap_or(false);
    if wants_gl {
        wgpu::Backends::GL
    } else {
        wgpu::Backends::PRIMARY
    }
}

/// Picks an adapter of `backends` following the module contract.
pub fn choose(
    instance: &wgpu::Instance,
    backends: wgpu::Backends,
    pref: Option<&str>,
) -> Result<wgpu::Adapter, KernelError> {
    let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
    let seen: Vec<String> = adapters.iter().map(|a| describe(&a.get_info())).collect();
    if let Some(p) = pref {
        adapters.retain(|a| matches(&a.get_info(), p));
    }
    adapters.sort_by_key(|a| type_rank(a.get_info().device_type));
    adapters.into_iter().next().ok_or_else(|| {
        let wanted = pref.map(|p| format!("matching `{p}` ")).unwrap_or_default();
        KernelError::NoAdapter(format!(
            "no adapter {wanted}among [{}]; install a Vulkan driver (e.g. `apt-get install \
             mesa-vulkan-drivers` for lavapipe) or change {ENV_ADAPTER}",
            seen.join("; ")
        ))
    })
}
