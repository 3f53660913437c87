//! Markdown rendering (being written).
