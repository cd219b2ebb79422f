//! The lessons built into the program, as lesson files (`builtin/*.md`).

/// A lesson that comes with the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltIn {
    /// What `--lesson` takes (`follow-the-post`).
    pub name: &'static str,
    /// The lesson file.
    pub text: &'static str,
}

impl BuiltIn {
    /// The file name shown in messages: `built-in lesson follow-the-post`.
    pub fn file(&self) -> String {
        format!("built-in lesson {}", self.name)
    }

    /// The lesson's title (its first `# ` line).
    pub fn title(&self) -> &'static str {
        self.text.lines().find_map(|l| l.strip_prefix("# ")).unwrap_or(self.name).trim()
    }
}

/// Every built-in lesson, in the order the Lessons menu lists them.
pub const BUILT_IN: [BuiltIn; 4] = [
    BuiltIn { name: "follow-the-post", text: include_str!("builtin/follow-the-post.md") },
    BuiltIn { name: "post-does-not-learn", text: include_str!("builtin/post-does-not-learn.md") },
    BuiltIn { name: "what-pooling-does", text: include_str!("builtin/what-pooling-does.md") },
    BuiltIn { name: "colour-channels", text: include_str!("builtin/colour-channels.md") },
];

/// The built-in lesson called `name` (any case), if there is one.
pub fn built_in(name: &str) -> Option<&'static BuiltIn> {
    BUILT_IN.iter().find(|b| b.name.eq_ignore_ascii_case(name.trim()))
}
