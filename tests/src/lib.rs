//! Kestrel integration tests (see tests/ directory)
