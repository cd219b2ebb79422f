//! A card's text as blocks and spans: the small part of Markdown a card uses (paragraphs,
//! `- ` bullets, `**bold**`, `` `code` ``), for the window to draw without a Markdown crate.

/// A paragraph or a bullet of a card's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// Lines up to a blank line, joined by spaces.
    Paragraph(Vec<Span>),
    /// A line starting with `- ` or `* ` (indented lines after it continue it).
    Bullet(Vec<Span>),
}

/// A run of text in one style.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// The text, without its markers.
    pub text: String,
    /// Between `**`.
    pub bold: bool,
    /// Between backticks (drawn in the monospace font).
    pub code: bool,
}

/// Splits a card's text into paragraphs and bullets, each into styled spans. An unclosed
/// marker is kept as text.
pub fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<(bool, String)> = None;
    let flush = |current: &mut Option<(bool, String)>, out: &mut Vec<Block>| {
        if let Some((bullet, t)) = current.take() {
            let spans = spans(&t);
            out.push(if bullet { Block::Bullet(spans) } else { Block::Paragraph(spans) });
        }
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            flush(&mut current, &mut out);
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("- ").or_else(|| trimmed.strip_prefix("* ")) {
            flush(&mut current, &mut out);
            current = Some((true, rest.trim().to_owned()));
            continue;
        }
        match &mut current {
            // An indented line after a bullet continues it; one at the margin starts a paragraph.
            Some((true, t)) if line.starts_with(char::is_whitespace) => {
                t.push(' ');
                t.push_str(trimmed);
            }
            Some((false, t)) => {
                t.push(' ');
                t.push_str(trimmed);
            }
            _ => {
                flush(&mut current, &mut out);
                current = Some((false, trimmed.to_owned()));
            }
        }
    }
    flush(&mut current, &mut out);
    out
}

/// The styled runs of one block's text.
fn spans(text: &str) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    let mut push = |t: &str, bold: bool, code: bool| {
        if t.is_empty() {
            return;
        }
        match out.last_mut() {
            Some(last) if last.bold == bold && last.code == code => last.text.push_str(t),
            _ => out.push(Span { text: t.to_owned(), bold, code }),
        }
    };
    let mut bold = false;
    let mut rest = text;
    while !rest.is_empty() {
        let next_code = rest.find('`');
        let next_bold = rest.find("**");
        match (next_code, next_bold) {
            (Some(c), b) if b.is_none_or(|b| c < b) => {
                let after = &rest[c + 1..];
                if let Some(end) = after.find('`') {
                    push(&rest[..c], bold, false);
                    push(&after[..end], bold, true);
                    rest = &after[end + 1..];
                } else {
                    push(rest, bold, false);
                    rest = "";
                }
            }
            (_, Some(b)) => {
                // `**` toggles bold only if a closing one follows (or it closes an open one).
                if bold || rest[b + 2..].contains("**") {
                    push(&rest[..b], bold, false);
                    bold = !bold;
                } else {
                    push(&rest[..b + 2], bold, false);
                }
                rest = &rest[b + 2..];
            }
            _ => {
                push(rest, bold, false);
                rest = "";
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str, bold: bool, code: bool) -> Span {
        Span { text: text.into(), bold, code }
    }

    #[test]
    fn paragraphs_bullets_bold_and_code_are_told_apart() {
        let b = blocks("One **bold** line\nand `x_pad` more.\n\n- first\n  still first\n- second\nAfter.");
        assert_eq!(
            b,
            [
                Block::Paragraph(vec![
                    s("One ", false, false),
                    s("bold", true, false),
                    s(" line and ", false, false),
                    s("x_pad", false, true),
                    s(" more.", false, false)
                ]),
                Block::Bullet(vec![s("first still first", false, false)]),
                Block::Bullet(vec![s("second", false, false)]),
                Block::Paragraph(vec![s("After.", false, false)]),
            ]
        );
    }

    #[test]
    fn unclosed_markers_stay_as_text() {
        assert_eq!(blocks("a ** b ` c"), [Block::Paragraph(vec![s("a ** b ` c", false, false)])]);
    }
}
