//! The lesson panel: the lesson's title, "card 3 of 9", the card's title and text (Markdown-lite,
//! large enough for a projector), where the app stands towards the card's state, and Back /
//! Next / Leave. Page Down and Page Up (what a presentation clicker sends) are Next and Back.

use eframe::egui::{self, FontId, RichText, TextFormat, text::LayoutJob};

use crate::lessons::{Block, Lesson, Span, blocks};
use crate::ui::support::text::GlyphSafe;

/// Where the app stands towards the card's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardStatus {
    /// Working towards it: what is under way ("Training to step 50…").
    Working(String),
    /// The app is in the card's state.
    Reached,
    /// The state cannot be reached, and why.
    Failed(String),
    /// The user took over before it was reached.
    Stopped(String),
}

/// What the panel asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LessonAction {
    /// The card before.
    Back,
    /// The card after.
    Next,
    /// Put the app in this card's state again.
    Again,
    /// Close the lesson, keeping the app as it is.
    Leave,
}

/// The label of the Next button.
pub const NEXT: &str = "Next";
/// The label of the Back button.
pub const BACK: &str = "Back";
/// The label of the Leave button.
pub const LEAVE: &str = "Leave lesson";
/// The label of the button that goes to the card's state again.
pub const AGAIN: &str = "Go to this card's state";

/// Text size of a card's text, in points (the window's body text is 14).
const TEXT_SIZE: f32 = 17.0;

/// What the panel drew.
pub struct CardsShown {
    /// What was clicked or pressed.
    pub action: Option<LessonAction>,
    /// The height (points) the panel needs to show the whole card without scrolling.
    pub wanted_height: f32,
}

/// Draws the lesson panel for card `index` of `lesson`.
pub fn lesson_cards_ui(
    ui: &mut egui::Ui,
    lesson: &Lesson,
    file: &str,
    index: usize,
    status: &CardStatus,
    glyphs: &mut GlyphSafe,
) -> CardsShown {
    let mut action = None;
    let Some(card) = lesson.cards.get(index) else { return CardsShown { action: None, wanted_height: 0.0 } };
    let top = ui.cursor().top();
    let count = lesson.cards.len();
    let (first, last) = (index == 0, index + 1 >= count);
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        crate::ui::windows::help::help_button_ui(ui, crate::ui::windows::help::HelpTopic::Lessons);
        ui.label(RichText::new(format!("Lesson: {}", lesson.title)).strong()).on_hover_text(file);
        ui.label(RichText::new(format!("card {} of {count}", index + 1)).weak());
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button(LEAVE).on_hover_text("Close the lesson; the app stays as it is").clicked() {
                action = Some(LessonAction::Leave);
            }
            ui.add_space(12.0);
            let next = egui::Button::new(RichText::new(NEXT).size(16.0).strong()).min_size(egui::vec2(90.0, 30.0));
            let r = ui.add_enabled(!last, next).on_hover_text("The next card (Page Down)");
            if r.clicked() {
                action = Some(LessonAction::Next);
            }
            let back = egui::Button::new(RichText::new(BACK).size(16.0)).min_size(egui::vec2(80.0, 30.0));
            if ui.add_enabled(!first, back).on_hover_text("The card before, in its state again (Page Up)").clicked() {
                action = Some(LessonAction::Back);
            }
            ui.add_space(8.0);
            status_ui(ui, status, &mut action);
        });
    });
    ui.add_space(2.0);
    ui.label(RichText::new(glyphs.get(ui.ctx(), &card.title, false)).size(21.0).strong());
    ui.add_space(2.0);
    let width = ui.available_width().min(1100.0);
    let above = ui.cursor().top() - top;
    let text =
        egui::ScrollArea::vertical().id_salt("lesson card text").max_height(ui.available_height()).show(ui, |ui| {
            if first && !lesson.intro.is_empty() {
                text_ui(ui, &lesson.intro, width, glyphs, true);
                ui.add_space(4.0);
            }
            text_ui(ui, &card.text, width, glyphs, false);
        });
    // The tallest card of the lesson, so that the panel, and its buttons, stay where they are
    // from card to card.
    let tallest = lesson
        .cards
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let intro = if i == 0 && !lesson.intro.is_empty() {
                text_height(ui, &lesson.intro, width, glyphs, true) + 4.0
            } else {
                0.0
            };
            intro + text_height(ui, &c.text, width, glyphs, false)
        })
        .fold(text.content_size.y, f32::max);
    let wanted_height = above + tallest + 8.0;
    let typing = ui.ctx().text_edit_focused();
    if action.is_none() && !typing {
        ui.ctx().input_mut(|i| {
            if !last && i.consume_key(egui::Modifiers::NONE, egui::Key::PageDown) {
                action = Some(LessonAction::Next);
            } else if !first && i.consume_key(egui::Modifiers::NONE, egui::Key::PageUp) {
                action = Some(LessonAction::Back);
            }
        });
    }
    CardsShown { action, wanted_height }
}

/// Where the app stands, at the right of the title row (drawn right to left).
fn status_ui(ui: &mut egui::Ui, status: &CardStatus, action: &mut Option<LessonAction>) {
    match status {
        CardStatus::Working(what) => {
            ui.label(RichText::new(what).color(ui.visuals().warn_fg_color));
            ui.spinner();
        }
        CardStatus::Reached => {
            ui.label(RichText::new("The app is in this card's state").weak());
        }
        CardStatus::Failed(why) | CardStatus::Stopped(why) => {
            if ui.button(AGAIN).clicked() {
                *action = Some(LessonAction::Again);
            }
            let color = if matches!(status, CardStatus::Failed(_)) {
                ui.visuals().error_fg_color
            } else {
                ui.visuals().warn_fg_color
            };
            ui.add(egui::Label::new(RichText::new(why).color(color)).truncate()).on_hover_text(why);
        }
    }
}

/// The laid-out blocks of a text: each paragraph or bullet as one job, wrapped at `width`.
fn text_jobs(ui: &egui::Ui, text: &str, width: f32, glyphs: &mut GlyphSafe, weak: bool) -> Vec<(bool, LayoutJob)> {
    blocks(text)
        .iter()
        .map(|block| {
            let (bullet, spans) = match block {
                Block::Paragraph(s) => (false, s),
                Block::Bullet(s) => (true, s),
            };
            let mut job = LayoutJob::default();
            job.wrap.max_width = width - if bullet { BULLET_INDENT } else { 0.0 };
            for span in spans {
                append(ui, &mut job, span, glyphs, weak);
            }
            (bullet, job)
        })
        .collect()
}

/// Indent of a bullet's text.
const BULLET_INDENT: f32 = 22.0;
/// Space after each block.
const BLOCK_GAP: f32 = 3.0;

/// A card's text: paragraphs and bullets with bold and code, wrapped at `width`.
fn text_ui(ui: &mut egui::Ui, text: &str, width: f32, glyphs: &mut GlyphSafe, weak: bool) {
    for (bullet, job) in text_jobs(ui, text, width, glyphs, weak) {
        ui.horizontal_top(|ui| {
            if bullet {
                ui.add_space(6.0);
                ui.label(RichText::new("•").size(TEXT_SIZE));
            }
            ui.add(egui::Label::new(job).wrap());
        });
        ui.add_space(BLOCK_GAP);
    }
}

/// The height [`text_ui`] takes for `text`.
fn text_height(ui: &egui::Ui, text: &str, width: f32, glyphs: &mut GlyphSafe, weak: bool) -> f32 {
    let jobs = text_jobs(ui, text, width, glyphs, weak);
    let gaps = BLOCK_GAP + 2.0 * ui.spacing().item_spacing.y;
    jobs.into_iter().map(|(_, job)| ui.fonts_mut(|f| f.layout_job(job)).size().y + gaps).sum()
}

fn append(ui: &egui::Ui, job: &mut LayoutJob, span: &Span, glyphs: &mut GlyphSafe, weak: bool) {
    let v = ui.visuals();
    // Brighter than the window's body text: a projector washes grey text out.
    let color = if span.bold {
        v.strong_text_color()
    } else if weak {
        v.text_color()
    } else {
        v.text_color().lerp_to_gamma(v.strong_text_color(), 0.6)
    };
    let mut format = if span.code {
        let mut f = TextFormat::simple(FontId::monospace(TEXT_SIZE - 1.5), color);
        f.background = v.code_bg_color;
        f
    } else {
        TextFormat::simple(FontId::proportional(TEXT_SIZE), color)
    };
    if span.bold && !span.code {
        // egui's fonts have no bold face: the strong colour and a touch of letter spacing.
        format.extra_letter_spacing = 0.4;
    }
    let text = glyphs.get(ui.ctx(), &span.text, span.code);
    job.append(&text, 0.0, format);
}
