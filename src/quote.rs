//! Making names and free text from a repository safe to print on a terminal. A
//! file name or commit message is data from whoever made the commit: printed raw,
//! `ESC[2J` in it clears the reader's screen, and a newline in a name forges a line
//! of `status` output. Every text output of a path goes through [`path`], every
//! message, author or other free text through [`text`] (the CLI re-exports both in
//! `cli::output`; the diff report in `report::text` uses them directly). JSON output
//! keeps the exact strings: serde escapes them.

use std::borrow::Cow;

/// The escape git uses for a byte that must be quoted, if it has a short one.
fn short_escape(b: u8) -> Option<char> {
    Some(match b {
        0x07 => 'a',
        0x08 => 'b',
        b'\t' => 't',
        b'\n' => 'n',
        0x0b => 'v',
        0x0c => 'f',
        b'\r' => 'r',
        b'"' => '"',
        b'\\' => '\\',
        _ => return None,
    })
}

/// Whether git (`core.quotePath = true`, its default) quotes a name holding this byte.
fn must_quote(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b >= 0x7f
}

/// A path as git prints it by default (`core.quotePath = true`): unchanged when
/// every byte is printable ASCII other than `"` and `\`; otherwise in double quotes,
/// with `\a \b \t \n \v \f \r \" \\` and three-digit octal escapes for every other
/// control byte and every byte from 0x7f up (so `é` is `"\303\251"`).
pub fn path(name: &[u8]) -> Cow<'_, str> {
    if !name.iter().any(|&b| must_quote(b)) {
        // Printable ASCII only: valid UTF-8.
        return Cow::Borrowed(std::str::from_utf8(name).unwrap_or_default());
    }
    let mut out = String::with_capacity(name.len() + 8);
    out.push('"');
    for &b in name {
        if !must_quote(b) {
            out.push(b as char);
        } else if let Some(c) = short_escape(b) {
            out.push('\\');
            out.push(c);
        } else {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    out.push('"');
    Cow::Owned(out)
}

/// [`path`] of a path already held as text.
pub fn path_str(name: &str) -> Cow<'_, str> {
    path(name.as_bytes())
}

/// Whether a character of free text must not reach a terminal raw: control
/// characters (C0 but newline and tab, DEL, C1) and the bidirectional overrides and
/// isolates that make text display in another order than it reads.
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Free text (a commit message, an author, a class name, an error message) safe to
/// print: newlines, tabs and every printable character as they are; other control
/// characters as octal escapes (`\033`), C1 controls and bidirectional overrides as
/// `\u{202e}`. Nothing else changes (a backslash stays one), so ordinary text reads
/// exactly as written; the escapes are for reading, `--json` has the exact text.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_unsafe(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\{:03o}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// [`text`] on one line: newlines and tabs escaped too (`\n`, `\t`), for a value
/// printed inside a line (a class name in a table, a subject in `log --oneline`).
pub fn line(s: &str) -> Cow<'_, str> {
    if !s.contains(['\n', '\t']) {
        return text(s);
    }
    let t = text(s);
    Cow::Owned(t.replace('\n', "\\n").replace('\t', "\\t"))
}

/// Untrusted text for an error message: control characters escaped, at most 60
/// characters shown, escapes included (a hostile name or ref can be megabytes).
pub fn short(text: &str) -> String {
    limited(text, 60)
}

/// [`short`] showing up to `keep` characters. Escapes count as what they
/// print (`\u{0}` is six), so a run of control bytes cannot make the quote longer.
pub fn limited(text: &str, keep: usize) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for c in text.chars() {
        let piece: String = if c.is_control() {
            c.escape_default().collect()
        } else {
            c.to_string()
        };
        let n = piece.chars().count();
        if shown + n > keep {
            out.push_str("...");
            break;
        }
        shown += n;
        out.push_str(&piece);
    }
    out
}

/// [`short`] of bytes that may not be UTF-8.
pub fn bytes(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(240)];
    let text = String::from_utf8_lossy(cut);
    let quoted = short(&text);
    if cut.len() < bytes.len() && !quoted.ends_with("...") {
        quoted + "..."
    } else {
        quoted
    }
}

/// A count and its noun, singular for one: `1 frame`, `2 frames`, `1 entry`,
/// `3 entries`, `2 branches` (English plurals of the nouns dsv counts; the
/// last word of a phrase is the one inflected: `2 label files`).
pub fn count(n: impl TryInto<u64>, noun: &str) -> String {
    let n: u64 = n.try_into().unwrap_or(u64::MAX);
    if n == 1 {
        return format!("1 {noun}");
    }
    format!("{n} {}", plural(noun))
}

/// The plural of a noun dsv counts (see [`count`]).
pub fn plural(noun: &str) -> String {
    let consonant_y = noun.len() >= 2
        && noun.ends_with('y')
        && !matches!(
            noun.as_bytes()[noun.len() - 2],
            b'a' | b'e' | b'i' | b'o' | b'u'
        );
    if consonant_y {
        format!("{}ies", &noun[..noun.len() - 1])
    } else if ["s", "x", "ch", "sh"].iter().any(|e| noun.ends_with(e)) {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

/// Names as a sentence lists alternatives: `a, b or c`.
pub fn or_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::{count, or_list};

    #[test]
    fn counts_are_singular_for_one_and_plural_otherwise() {
        assert_eq!(count(1u64, "frame"), "1 frame");
        assert_eq!(count(0usize, "frame"), "0 frames");
        assert_eq!(count(2u64, "entry"), "2 entries");
        assert_eq!(count(2u64, "delivery"), "2 deliveries");
        assert_eq!(count(3u64, "branch"), "3 branches");
        assert_eq!(count(2u64, "label file"), "2 label files");
        assert_eq!(count(2u64, "class"), "2 classes");
        assert_eq!(count(2u64, "key"), "2 keys");
    }

    /// Found by the `ref_metadata` fuzz target (its crash input: 0x08 and 15 NULs):
    /// each NUL printed as `\u{0}` made a 16-byte ref quote 95 characters long.
    #[test]
    fn quote_of_many_control_bytes_stays_short() {
        let input = [8u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let q = bytes(&input);
        assert!(q.chars().count() < 80, "{q}");
        assert!(q.starts_with("\\u{8}\\u{0}") && q.ends_with("..."), "{q}");
        assert!(bytes(&[0u8; 5000]).chars().count() < 80);
        assert_eq!(short(&"a".repeat(60)), "a".repeat(60));
        assert_eq!(short(&"a".repeat(61)), format!("{}...", "a".repeat(60)));
    }

    use super::*;

    #[test]
    fn quotes_paths_like_git() {
        assert_eq!(path(b"plain/file name.txt"), "plain/file name.txt");
        assert_eq!(
            path(b"a\x1b[2J\tb\nc\"d\\e"),
            "\"a\\033[2J\\tb\\nc\\\"d\\\\e\""
        );
        assert_eq!(path("é".as_bytes()), "\"\\303\\251\"");
        assert_eq!(path(b"\x7f\x01\xff"), "\"\\177\\001\\377\"");
        assert_eq!(path(b"bell\x07"), "\"bell\\a\"");
    }

    #[test]
    fn escapes_control_characters_in_text() {
        assert_eq!(
            text("fix: labels\n\n\tdetails é"),
            "fix: labels\n\n\tdetails é"
        );
        assert_eq!(text("a\x1b[2Jb\r\x7f"), "a\\033[2Jb\\015\\177");
        assert_eq!(text("x\u{9b}31m\u{202e}y"), "x\\u{9b}31m\\u{202e}y");
        assert_eq!(line("a\tb\nc\x1b"), "a\\tb\\nc\\033");
    }

    #[test]
    fn alternatives_are_listed_with_or_before_the_last() {
        assert_eq!(or_list(["a", "b", "c"]), "a, b or c");
        assert_eq!(or_list(["a", "b"]), "a or b");
        assert_eq!(or_list(["a"]), "a");
        assert_eq!(or_list([]), "");
    }
}
