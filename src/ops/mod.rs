//! Porcelain operations built on the store, index and refs. The CLI calls these.

pub mod add;
pub mod blame;
pub mod branch;
pub mod checkout;
pub mod commit;
pub mod events;
pub mod frame_attrs;
pub mod fsck;
pub mod gc;
pub mod git_integration;
pub mod inspect;
pub mod label_check;
pub mod label_diff;
pub mod log;
pub mod merge;
pub mod meta_edit;
pub mod repair;
pub mod revparse;
pub mod stats;
pub mod status;
pub mod sync;
