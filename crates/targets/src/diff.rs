//! A unified diff of a rewrite, made from its edits (no diff algorithm is needed: the
//! changed lines are known), for `patch -p1` or `git apply`.

use std::fmt::Write as _;

use crate::rewrite::Edit;

/// Lines of unchanged context around each change.
const CONTEXT: usize = 3;

/// The diff of `text` changed by `edits` (sorted, disjoint), naming the file `path`
/// under `a/` and `b/`. Empty when there are no edits.
pub fn unified_diff(path: &str, text: &str, edits: &[Edit]) -> String {
    if edits.is_empty() {
        return String::new();
    }
    let starts = line_starts(text);
    let line_of = |offset: usize| starts.partition_point(|&start| start <= offset) - 1;
    // Blocks of whole lines changed together: (first line, last line, edits).
    let mut blocks: Vec<(usize, usize, Vec<&Edit>)> = Vec::new();
    for edit in edits {
        let first = line_of(edit.range.start);
        let last = line_of(edit.range.end.saturating_sub(1).max(edit.range.start));
        match blocks.last_mut() {
            Some(block) if first <= block.1 => {
                block.1 = block.1.max(last);
                block.2.push(edit);
            }
            _ => blocks.push((first, last, vec![edit])),
        }
    }
    let lines = starts.len();
    let line_text =
        |line: usize| &text[starts[line]..starts.get(line + 1).copied().unwrap_or(text.len())];

    let mut out = format!("--- a/{path}\n+++ b/{path}\n");
    // Lines the earlier hunks took from the old text and gave the new one.
    let (mut old_before, mut new_before) = (0usize, 0usize);
    let mut index = 0;
    while index < blocks.len() {
        // A hunk takes every block whose context touches the previous one's.
        let mut end = index;
        while end + 1 < blocks.len() && blocks[end + 1].0 <= blocks[end].1 + 2 * CONTEXT + 1 {
            end += 1;
        }
        let old_first = blocks[index].0.saturating_sub(CONTEXT);
        let old_last = (blocks[end].1 + CONTEXT).min(lines - 1);
        let mut body = String::new();
        let (mut old_count, mut new_count) = (0usize, 0usize);
        let mut line = old_first;
        for (first, last, block_edits) in &blocks[index..=end] {
            while line < *first {
                push_line(&mut body, ' ', line_text(line));
                old_count += 1;
                new_count += 1;
                line += 1;
            }
            let old = &text[starts[*first]..starts.get(last + 1).copied().unwrap_or(text.len())];
            let base = starts[*first];
            let shifted: Vec<Edit> = block_edits
                .iter()
                .map(|edit| Edit {
                    range: edit.range.start - base..edit.range.end - base,
                    replacement: edit.replacement.clone(),
                })
                .collect();
            let new = crate::rewrite::apply(old, &shifted);
            for old_line in old.split_inclusive('\n') {
                push_line(&mut body, '-', old_line);
                old_count += 1;
            }
            for new_line in new.split_inclusive('\n') {
                push_line(&mut body, '+', new_line);
                new_count += 1;
            }
            line = last + 1;
        }
        while line <= old_last {
            push_line(&mut body, ' ', line_text(line));
            old_count += 1;
            new_count += 1;
            line += 1;
        }
        // The earlier hunks cover lines before this one, so this cannot underflow.
        let new_first = old_first - old_before + new_before;
        let _ = writeln!(
            out,
            "@@ -{} +{} @@",
            range(old_first, old_count),
            range(new_first, new_count)
        );
        out.push_str(&body);
        old_before += old_count;
        new_before += new_count;
        index = end + 1;
    }
    out
}

/// `start,count` in 1-based lines; an empty range names the line before it.
fn range(first: usize, count: usize) -> String {
    if count == 0 {
        format!("{first},0")
    } else {
        format!("{},{count}", first + 1)
    }
}

fn push_line(out: &mut String, marker: char, line: &str) {
    out.push(marker);
    out.push_str(line);
    if !line.ends_with('\n') {
        out.push_str("\n\\ No newline at end of file\n");
    }
}

fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        text.bytes()
            .enumerate()
            .filter(|(_, byte)| *byte == b'\n')
            .map(|(index, _)| index + 1)
            .filter(|&start| start < text.len()),
    );
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(text: &str, old: &str, new: &str) -> Edit {
        let start = text.find(old).expect("in text");
        Edit {
            range: start..start + old.len(),
            replacement: new.to_owned(),
        }
    }

    #[test]
    fn hunks_carry_three_lines_of_context() {
        let mut text = String::new();
        for n in 1..=20 {
            let _ = writeln!(text, "line {n}");
        }
        let edits = [
            edit(&text, "line 5", "five"),
            edit(&text, "line 16", "sixteen\nmore"),
        ];
        let diff = unified_diff("x.py", &text, &edits);
        let expected = "--- a/x.py\n+++ b/x.py\n@@ -2,7 +2,7 @@\n line 2\n line 3\n line 4\n-line 5\n+five\n line 6\n line 7\n line 8\n@@ -13,7 +13,8 @@\n line 13\n line 14\n line 15\n-line 16\n+sixteen\n+more\n line 17\n line 18\n line 19\n";
        assert_eq!(diff, expected);
    }

    #[test]
    fn close_changes_share_a_hunk_and_a_missing_newline_is_marked() {
        let text = "a\nb\nc\nd\ne";
        let edits = [edit(text, "a", "A"), edit(text, "e", "E")];
        let diff = unified_diff("f", text, &edits);
        assert_eq!(
            diff,
            "--- a/f\n+++ b/f\n@@ -1,5 +1,5 @@\n-a\n+A\n b\n c\n d\n-e\n\\ No newline at end of file\n+E\n\\ No newline at end of file\n"
        );
        assert_eq!(unified_diff("f", text, &[]), "");
    }
}
