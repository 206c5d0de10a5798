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
    percent_to(part, whole, 0)
}

/// `41.3%` of a whole, for shares that may be small; `-` when the whole is zero.
pub fn percent(part: u64, whole: u64) -> String {
    percent_to(part, whole, 1)
}

/// The percentage with `decimals` digits after the point; `-` when the whole is zero.
fn percent_to(part: u64, whole: u64, decimals: usize) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    #[allow(clippy::cast_precision_loss, reason = "display only")]
    let percent = part as f64 * 100.0 / whole as f64;
    format!("{percent:.decimals$}%")
}

/// A byte count as people write it: `1000`, `500M`, `20G`, `1TiB`, `16 GB` (the suffixes
/// K, M, G and T are powers of 1024). `None` for anything else, and for a count past
/// `u64::MAX`.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let shift = match unit.trim().trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(1 << shift)
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

    #[test]
    fn reads_byte_counts() {
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("500M"), Some(500 << 20));
        assert_eq!(parse_bytes(" 16 g "), Some(16 << 30));
        assert_eq!(parse_bytes("1TiB"), Some(1 << 40));
        assert_eq!(parse_bytes("2KB"), Some(2048));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("G"), None);
        assert_eq!(parse_bytes("-1"), None);
        assert_eq!(parse_bytes("17179869184G"), None);
    }
}
