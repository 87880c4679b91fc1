//! Host memory figures from `/proc` (Linux): the process's peak resident set (`VmHWM` of
//! `/proc/self/status`) and the memory available for new allocations (`MemAvailable` of
//! `/proc/meminfo`). Both are `None` where `/proc` is absent or the field is missing.

/// Peak resident set size of this process, bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    kib_field(&text, "VmHWM:")
}

/// Memory available to new allocations, bytes.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    kib_field(&text, "MemAvailable:")
}

/// The value of a `Name:   123 kB` line, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let mut parts = line[name.len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kib_fields() {
        let status = "Name:\tkestrel\nVmPeak:\t  9000 kB\nVmHWM:\t  1234 kB\nThreads:\t3\n";
        assert_eq!(kib_field(status, "VmHWM:"), Some(1234 * 1024));
        assert_eq!(kib_field(status, "Threads:"), Some(3));
        assert_eq!(kib_field(status, "VmRSS:"), None);
        assert_eq!(kib_field("VmHWM: lots kB\n", "VmHWM:"), None);
        assert_eq!(kib_field("VmHWM: 5 MB\n", "VmHWM:"), None);
    }

    #[test]
    fn this_process_has_a_peak_rss_on_linux() {
        if cfg!(target_os = "linux") {
            let rss = peak_rss_bytes().unwrap();
            assert!(rss > 1 << 20, "VmHWM {rss} B");
            assert!(available_bytes().unwrap() > 0);
        }
    }
}
