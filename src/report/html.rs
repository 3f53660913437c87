//! The HTML review page (placeholder: being written).
