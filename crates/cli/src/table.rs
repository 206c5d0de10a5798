//! Tables that fit the terminal: the last column of a row, free text such as a list of
//! products or notes, wraps at the terminal's width and continues under itself. In a
//! pipe (no width) rows stay whole, one line each, for `grep` and `cut`.

/// The row `lead` + `last`, where `lead` is the padded columns before the last one;
/// `last` wraps within `width` columns at spaces, continuation lines indented to where
/// it began. A lead so wide that too little room is left wraps nothing.
pub fn row(lead: &str, last: &str, width: Option<usize>) -> String {
    wrapped(lead, last.split(' ').filter(|word| !word.is_empty()), width)
}

/// The row `lead` + `items` joined by commas, wrapped as [`row`] wraps but only between
/// items, so that no name (`RTX 2060`) is cut in two.
pub fn list_row(lead: &str, items: &[String], width: Option<usize>) -> String {
    let last = items.len().saturating_sub(1);
    let words: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let item = item.replace(' ', "\u{a0}");
            if index < last {
                format!("{item},")
            } else {
                item
            }
        })
        .collect();
    wrapped(lead, words.iter().map(String::as_str), width).replace('\u{a0}', " ")
}

fn wrapped<'a>(lead: &str, words: impl Iterator<Item = &'a str>, width: Option<usize>) -> String {
    /// Less room than this for the last column, and wrapping helps nobody.
    const NARROWEST: usize = 16;
    let indent = lead.chars().count();
    let words: Vec<&str> = words.collect();
    let room = match width {
        Some(width) if width >= indent + NARROWEST => width - indent,
        _ => return format!("{lead}{}", words.join(" ")).trim_end().to_owned(),
    };
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in words {
        let wanted = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if !line.is_empty() && wanted > room {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    let pad = " ".repeat(indent);
    let mut text = String::new();
    for (index, line) in lines.iter().enumerate() {
        if index == 0 {
            text.push_str(lead);
        } else {
            text.push('\n');
            text.push_str(&pad);
        }
        text.push_str(line);
    }
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::{list_row, row};

    #[test]
    fn a_row_wraps_its_last_column_under_itself_within_the_width() {
        let products = "Tesla P40, Tesla P4, GTX 1080 Ti, GTX 1080, GTX 1070, GTX 1060, Titan Xp";
        let text = row("6.1    Pascal  ", products, Some(48));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() > 1, "{text}");
        assert!(
            lines.iter().all(|line| line.chars().count() <= 48),
            "{text}"
        );
        assert!(lines[0].starts_with("6.1    Pascal  Tesla P40,"), "{text}");
        for line in &lines[1..] {
            assert!(line.starts_with(&" ".repeat(15)), "{text}");
            assert!(!line[15..].starts_with(' '), "{text}");
        }
        let words: Vec<&str> = text.split_whitespace().skip(2).collect();
        assert_eq!(words.join(" "), products, "no word lost or split");
    }

    #[test]
    fn a_pipe_or_a_narrow_terminal_keeps_the_row_whole() {
        let lead = "capability   arch       ";
        for width in [None, Some(30)] {
            assert_eq!(
                row(lead, "Tesla V100, Titan V", width),
                "capability   arch       Tesla V100, Titan V"
            );
        }
        assert_eq!(row("x    ", "", Some(80)), "x");
    }

    #[test]
    fn a_list_wraps_between_its_items_only() {
        let items: Vec<String> = [
            "RTX 2080 Ti",
            "RTX 2080",
            "RTX 2070",
            "RTX 2060",
            "Titan RTX",
        ]
        .map(str::to_owned)
        .to_vec();
        let text = list_row("7.5  ", &items, Some(30));
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "7.5  RTX 2080 Ti, RTX 2080,",
                "     RTX 2070, RTX 2060,",
                "     Titan RTX"
            ]
        );
        assert_eq!(
            list_row("7.5  ", &items, None),
            "7.5  RTX 2080 Ti, RTX 2080, RTX 2070, RTX 2060, Titan RTX"
        );
    }

    #[test]
    fn a_word_longer_than_the_room_stands_alone_on_its_line() {
        let text = row("ab ", "short averyveryveryverylongword end", Some(20));
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            ["ab short", "   averyveryveryverylongword", "   end"]
        );
    }
}
