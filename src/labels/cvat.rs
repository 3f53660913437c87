//! cvat label files (placeholder: being written).

use super::{FrameLabels, LabelError};

/// Whether the bytes look like this format (a cheap check on the first bytes).
pub fn sniff(_path: &str, _head: &[u8]) -> bool {
    false
}

/// Parses a whole file into its frames.
pub fn parse(_bytes: &[u8]) -> Result<Vec<FrameLabels>, LabelError> {
    Err(LabelError::msg("cvat parser not written yet"))
}

/// Writes frames back in this format.
pub fn write(_frames: &[FrameLabels]) -> Result<Vec<u8>, LabelError> {
    Err(LabelError::msg("cvat writer not written yet"))
}
