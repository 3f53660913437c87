//! The HTML review page (placeholder while it is being written).

/// Renders the review page.
pub fn render(
    _diff: &crate::ops::label_diff::DatasetDiff,
    _frame_bytes: &dyn Fn(&str, crate::report::Side) -> Option<Vec<u8>>,
    _out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    Err(std::io::Error::other("the HTML review page is not written yet"))
}
