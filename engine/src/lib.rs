//! Kestrel engine
