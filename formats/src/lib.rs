//! Kestrel formats
