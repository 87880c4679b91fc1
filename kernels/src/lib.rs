//! Kestrel kernels
