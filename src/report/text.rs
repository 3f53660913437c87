//! Terminal rendering (being written).
