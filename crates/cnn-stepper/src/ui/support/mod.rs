//! What serves the panels, tabs and windows: nothing here is a region of the window.
//!
//! - [`colormap`]: diverging colour maps, scales and legends.
//! - [`textures`]: tiles of values as one texture, and how they are drawn.
//! - [`scene`]: the textures built from the latest snapshot, shared by several views.
//! - [`text`]: glyph fallbacks and number and class-name formatting.
//! - [`palette`]: the accent colours.
//! - [`widgets`]: small widgets several views use (thumbnail cells, headings, placeholders).
//! - [`prefs`]: what the window remembers between runs.
//! - [`export`]: PNG pictures of the window or of one view.

pub mod colormap;
pub mod export;
pub mod palette;
pub mod prefs;
pub mod scene;
pub mod text;
pub mod textures;
pub mod widgets;
