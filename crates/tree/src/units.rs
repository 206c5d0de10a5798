//! Numbers for people: byte sizes and shares, as every command and page shows them.

/// `1.5 KiB`, `298.1 MiB`, `812 B`.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    #[allow(clippy::cast_precision_loss, reason = "display only")]
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `1 file`, `3 files`: a count with the word that agrees with it.
pub fn count(number: usize, one: &str, many: &str) -> String {
    format!("{number} {}", if number == 1 { one } else { many })
}

/// `+1.5 KiB`, `-298.1 MiB`, `+0 B`.
pub fn delta(count: i128) -> String {
    let sign = if count < 0 { '-' } else { '+' };
    format!(
        "{sign}{}",
        bytes(u64::try_from(count.unsigned_abs()).unwrap_or(u64::MAX))
    )
}

/// `41%` of a whole; `-` when the whole is zero.
pub fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    #[allow(clippy::cast_precision_loss, reason = "display only")]
    let percent = part as f64 * 100.0 / whole as f64;
    format!("{percent:.0}%")
}

/// `41.3%` of a whole, for shares that may be small; `-` when the whole is zero.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    #[allow(clippy::cast_precision_loss, reason = "display only")]
    let percent = part as f64 * 100.0 / whole as f64;
    format!("{percent:.1}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_sizes_and_shares() {
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(312_576_000), "298.1 MiB");
        assert_eq!(delta(-1536), "-1.5 KiB");
        assert_eq!(delta(0), "+0 B");
        assert_eq!(share(41, 100), "41%");
        assert_eq!(share(1, 0), "-");
        assert_eq!(percent(413, 1000), "41.3%");
        assert_eq!(percent(1, 0), "-");
    }
}
