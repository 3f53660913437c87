//! yolo label files (placeholder: being written).

use super::{FrameLabels, LabelError, ParseContext};

/// Whether the bytes look like this format (a cheap check on the first bytes).
pub fn sniff(_path: &str, _head: &[u8]) -> bool {
    false
}

/// Parses one frame's label file.
pub fn parse(_bytes: &[u8], _ctx: &ParseContext) -> Result<FrameLabels, LabelError> {
    Err(LabelError::msg("yolo parser not written yet"))
}

/// Writes one frame back in this format.
pub fn write(_frame: &FrameLabels) -> Result<Vec<u8>, LabelError> {
    Err(LabelError::msg("yolo writer not written yet"))
}

/// Reads class names from `data.yaml`, `obj.names` or `classes.txt` (chosen by file name).
pub fn parse_class_names(_file_name: &str, _bytes: &[u8]) -> Result<Vec<String>, LabelError> {
    Err(LabelError::msg("yolo names parser not written yet"))
}
