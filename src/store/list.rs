//! Enumerating what the store holds: commits (by prefix or all), objects and packs.

use redb::ReadableTable;

use crate::error::Result;
use crate::id::ObjectId;

use super::*;

impl ObjectStore {
    /// Commit ids whose hex starts with `prefix`.
    pub fn commits_with_prefix(&self, prefix: &str) -> Result<Vec<ObjectId>> {
        let Some((lo, hi)) = ObjectId::prefix_range(prefix) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<ObjectId> = self
            .pending_commits
            .lock()
            .map_err(poisoned)?
            .iter()
            .filter(|id| **id >= lo && **id <= hi)
            .copied()
            .collect();
        self.db.guard(|| {
            let tx = self.db.read()?;
            let table = tx.open_table(COMMITS).map_err(|e| self.db.err(e))?;
            for item in table
                .range::<[u8; 32]>(lo.0..=hi.0)
                .map_err(|e| self.db.err(e))?
            {
                let (k, _) = item.map_err(|e| self.db.err(e))?;
                let id = ObjectId(k.value());
                if !out.contains(&id) {
                    out.push(id);
                }
                if out.len() > 16 {
                    break;
                }
            }
            Ok(out)
        })
    }

    /// Every commit id in the store.
    pub fn all_commits(&self) -> Result<Vec<ObjectId>> {
        self.db.guard(|| self.all_commits_inner())
    }

    pub(super) fn all_commits_inner(&self) -> Result<Vec<ObjectId>> {
        let tx = self.db.read()?;
        let table = tx.open_table(COMMITS).map_err(|e| self.db.err(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.db.err(e))? {
            let (k, _) = item.map_err(|e| self.db.err(e))?;
            out.push(ObjectId(k.value()));
        }
        Ok(out)
    }

    /// Every (id, location) in the index.
    pub fn all_objects(&self) -> Result<Vec<(ObjectId, Location)>> {
        self.db.guard(|| self.all_objects_inner())
    }

    pub(super) fn all_objects_inner(&self) -> Result<Vec<(ObjectId, Location)>> {
        let tx = self.db.read()?;
        let table = tx.open_table(OBJECTS).map_err(|e| self.db.err(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.db.err(e))? {
            let (k, v) = item.map_err(|e| self.db.err(e))?;
            let (pack, offset, len) = v.value();
            out.push((ObjectId(k.value()), Location { pack, offset, len }));
        }
        Ok(out)
    }

    /// Every pack number with its committed length.
    pub fn all_packs(&self) -> Result<Vec<(u32, u64)>> {
        self.db.guard(|| self.all_packs_inner())
    }

    pub(super) fn all_packs_inner(&self) -> Result<Vec<(u32, u64)>> {
        let tx = self.db.read()?;
        let table = tx.open_table(PACKS).map_err(|e| self.db.err(e))?;
        let mut out = Vec::new();
        for item in table.iter().map_err(|e| self.db.err(e))? {
            let (k, v) = item.map_err(|e| self.db.err(e))?;
            out.push((k.value(), v.value()));
        }
        Ok(out)
    }
}
