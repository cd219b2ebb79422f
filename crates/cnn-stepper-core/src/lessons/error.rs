//! What is wrong with a lesson file: always the file, the line and the reason.

use std::fmt;

/// A lesson file that cannot be used, naming the file, the line (1-based) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {problem}", if *line == 0 { String::new() } else { format!(", line {line}") })]
pub struct LessonError {
    /// The file's name as the user knows it (a path, or `built-in lesson NAME`).
    pub file: String,
    /// The line the problem is on, from 1 (the last line for a file that ends too early); 0
    /// when the file itself cannot be read (no line is at fault).
    pub line: usize,
    /// What is wrong.
    pub problem: Problem,
}

/// The kinds of mistake a lesson file can hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Nothing but blank lines.
    Empty,
    /// The first line that is not blank is not `# title`.
    MissingTitle,
    /// Text or a `key: value` before the first `## card title`.
    CardWithoutTitle,
    /// A title and no `## card` at all.
    NoCards,
    /// `#` or `##` with nothing after it.
    EmptyTitle,
    /// A key this version does not know.
    UnknownKey {
        /// The key as written.
        key: String,
        /// Every key known.
        known: Vec<&'static str>,
    },
    /// The same key twice in one card.
    DuplicateKey(String),
    /// A key whose value cannot be used.
    BadValue {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// Why, and what would do.
        reason: String,
    },
    /// The file cannot be read (missing, a folder, not text): the reason.
    Unreadable(String),
    /// A name (network, phase, tab, layer) that does not exist where the card is.
    Unknown {
        /// What kind of name: `network`, `phase`, `tab`, `layer`.
        what: &'static str,
        /// The name as written.
        name: String,
        /// Where it was looked for (`lenet5 on mnist-sample`), empty if nowhere in particular.
        context: String,
        /// The names that would do.
        known: Vec<String>,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty => f.write_str("the lesson is empty: write `# Its title` and a `## card` at least"),
            Problem::MissingTitle => f.write_str("a lesson starts with its title, a line `# Title`"),
            Problem::CardWithoutTitle => {
                f.write_str("this belongs to no card: every card starts with a line `## Card title`")
            }
            Problem::NoCards => f.write_str("the lesson has no cards: add a line `## Card title` and its text"),
            Problem::EmptyTitle => f.write_str("the title is empty"),
            Problem::Unreadable(reason) => f.write_str(reason),
            Problem::UnknownKey { key, known } => {
                write!(f, "unknown key `{key}`: the keys are {}", known.join(", "))
            }
            Problem::DuplicateKey(key) => write!(f, "`{key}` is given twice in this card"),
            Problem::BadValue { key, value, reason } => write!(f, "`{key}: {value}`: {reason}"),
            Problem::Unknown { what, name, context, known } => {
                write!(f, "unknown {what} `{name}`")?;
                if !context.is_empty() {
                    write!(f, " in {context}")?;
                }
                if known.is_empty() { Ok(()) } else { write!(f, "; known: {}", known.join(", ")) }
            }
        }
    }
}
