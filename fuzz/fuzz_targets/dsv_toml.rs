//! `dsv.toml` is tracked in the dataset, so it comes from whoever committed it:
//! parsing it (label rules and hooks) and applying its rules must never panic.
#![no_main]
use dsv::dsv_toml::DsvToml;
use dsv::layout::Layout;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(hooks) = dsv::hooks::config::parse(data) {
        for h in hooks {
            let _ = h.filters.branch_matches(Some("main"));
            let _ = h.filters.paths_match(["labels/a.txt", ""].into_iter());
        }
    }
    if let Ok(t) = DsvToml::parse(data) {
        let layout = Layout::new(t);
        for p in ["labels/a.txt", "images/a.jpg", "a/b/c.json", "x.xml", ""] {
            let _ = layout.role_by_path(p);
            let _ = layout.role(p, data);
        }
    }
});
