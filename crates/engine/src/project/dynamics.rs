//! The run store's record of training dynamics: each weight matrix's gradient, update and
//! weight norms at the recorded steps, weight and gradient histograms and the probe insight
//! (per-token loss, logit lens, block statistics) at evaluations. The tables sit beside the
//! rest of the history in `run.sqlite`.

use super::store::{RunStore, StoreError};
use crate::dynamics::{BlockRecord, DynamicsRecord, HistogramSet, MatrixRecord, ProbeInsight};
use rusqlite::params;

/// The tables, created when a store opens (older runs gain them empty).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS dynamics (
    step INTEGER NOT NULL, name TEXT NOT NULL, grad_norm REAL NOT NULL, update_norm REAL NOT NULL,
    weight_norm REAL NOT NULL, PRIMARY KEY (step, name));
CREATE TABLE IF NOT EXISTS histograms (step INTEGER PRIMARY KEY, histograms TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS insights (step INTEGER PRIMARY KEY, insight TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (step INTEGER PRIMARY KEY, blocks TEXT NOT NULL);
";

impl RunStore {
    /// Forgets the dynamics recorded after `step` (part of [`RunStore::truncate_after`]).
    pub(super) fn truncate_dynamics_after(&self, step: usize) -> Result<(), StoreError> {
        for table in ["dynamics", "histograms", "insights", "blocks"] {
            self.conn()
                .execute(
                    &format!("DELETE FROM {table} WHERE step > ?1"),
                    [step as i64],
                )
                .map_err(|e| self.db_err(e))?;
        }
        Ok(())
    }

    /// Keeps one recorded step's matrices (replacing a record of the same step).
    pub fn append_dynamics(&self, record: &DynamicsRecord) -> Result<(), StoreError> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(|e| self.db_err(e))?;
        {
            let mut stmt = tx
                .prepare_cached("INSERT OR REPLACE INTO dynamics VALUES (?1, ?2, ?3, ?4, ?5)")
                .map_err(|e| self.db_err(e))?;
            for m in &record.matrices {
                stmt.execute(params![
                    record.step as i64,
                    m.name,
                    f64::from(m.grad_norm),
                    f64::from(m.update_norm),
                    f64::from(m.weight_norm)
                ])
                .map_err(|e| self.db_err(e))?;
            }
        }
        tx.commit().map_err(|e| self.db_err(e))
    }

    /// Every recorded step's matrices, in step order (the matrices in the model's order).
    pub fn dynamics(&self) -> Result<Vec<DynamicsRecord>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT step, name, grad_norm, update_norm, weight_norm FROM dynamics
                 ORDER BY step, rowid",
            )
            .map_err(|e| self.db_err(e))?;
        let rows: Vec<(usize, MatrixRecord)> = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)? as usize,
                    MatrixRecord {
                        name: r.get(1)?,
                        grad_norm: r.get::<_, f64>(2)? as f32,
                        update_norm: r.get::<_, f64>(3)? as f32,
                        weight_norm: r.get::<_, f64>(4)? as f32,
                    },
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_err(e))?;
        let mut out: Vec<DynamicsRecord> = Vec::new();
        for (step, matrix) in rows {
            match out.last_mut() {
                Some(last) if last.step == step => last.matrices.push(matrix),
                _ => out.push(DynamicsRecord {
                    step,
                    matrices: vec![matrix],
                }),
            }
        }
        Ok(out)
    }

    /// Keeps each block's residual size and attention entropy at one recorded step.
    pub fn append_blocks(&self, record: &BlockRecord) -> Result<(), StoreError> {
        self.put_json("blocks", record.step, record)
    }

    /// Every recorded step's block statistics, in step order.
    pub fn blocks(&self) -> Result<Vec<BlockRecord>, StoreError> {
        self.all_json("blocks")
    }

    /// Keeps the weight and gradient histograms of one evaluation.
    pub fn append_histograms(&self, set: &HistogramSet) -> Result<(), StoreError> {
        self.put_json("histograms", set.step, set)
    }

    /// Every evaluation's histograms, in step order.
    pub fn histograms(&self) -> Result<Vec<HistogramSet>, StoreError> {
        self.all_json("histograms")
    }

    /// Keeps the probe insight of one evaluation.
    pub fn append_insight(&self, insight: &ProbeInsight) -> Result<(), StoreError> {
        self.put_json("insights", insight.step, insight)
    }

    /// Every evaluation's probe insight, in step order.
    pub fn insights(&self) -> Result<Vec<ProbeInsight>, StoreError> {
        self.all_json("insights")
    }

    /// The newest probe insight, if any.
    pub fn latest_insight(&self) -> Result<Option<ProbeInsight>, StoreError> {
        use rusqlite::OptionalExtension;
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT insight FROM insights ORDER BY step DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db_err(e))?;
        text.map(|t| self.decode("insights", &t)).transpose()
    }

    fn put_json(
        &self,
        table: &str,
        step: usize,
        value: &impl serde::Serialize,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                &format!("INSERT OR REPLACE INTO {table} VALUES (?1, ?2)"),
                params![
                    step as i64,
                    serde_json::to_string(value).expect("serializes")
                ],
            )
            .map(|_| ())
            .map_err(|e| self.db_err(e))
    }

    fn all_json<T: serde::de::DeserializeOwned>(&self, table: &str) -> Result<Vec<T>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare(&format!("SELECT * FROM {table} ORDER BY step"))
            .map_err(|e| self.db_err(e))?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(1))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_err(e))?;
        rows.iter().map(|t| self.decode(table, t)).collect()
    }

    /// A row that does not read is damage named by its table, never skipped in silence.
    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        text: &str,
    ) -> Result<T, StoreError> {
        serde_json::from_str(text).map_err(|e| StoreError::Invalid {
            path: self.dir().join(Self::DB_FILE),
            message: format!("table {table}: a row does not read: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::{Histogram, HistogramKind};
    use crate::spec::RunSpec;

    fn record(step: usize) -> DynamicsRecord {
        DynamicsRecord {
            step,
            matrices: ["tok_emb.weight", "blocks.0.attn.qkv.weight"]
                .iter()
                .enumerate()
                .map(|(i, name)| MatrixRecord {
                    name: name.to_string(),
                    grad_norm: step as f32,
                    update_norm: 0.01 * i as f32,
                    weight_norm: 2.0,
                })
                .collect(),
        }
    }

    #[test]
    fn dynamics_read_back_in_order_and_resume_cuts_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::create(dir.path(), &RunSpec::default()).unwrap();
        for step in [10, 20, 30] {
            store.append_dynamics(&record(step)).unwrap();
            store
                .append_histograms(&HistogramSet {
                    step,
                    histograms: vec![Histogram::of(
                        "layer 0".into(),
                        HistogramKind::Grad,
                        &[1.0, 2.0],
                    )],
                })
                .unwrap();
            store
                .append_insight(&ProbeInsight {
                    step,
                    ..ProbeInsight::default()
                })
                .unwrap();
            store
                .append_blocks(&BlockRecord {
                    step,
                    act_rms: vec![1.5, step as f32],
                    attn_entropy: vec![0.5, 0.25],
                })
                .unwrap();
        }
        let back = store.dynamics().unwrap();
        assert_eq!(back, vec![record(10), record(20), record(30)]);
        store.truncate_after(20).unwrap();
        let reopened = RunStore::open(dir.path()).unwrap();
        assert_eq!(reopened.dynamics().unwrap(), vec![record(10), record(20)]);
        assert_eq!(reopened.histograms().unwrap().len(), 2);
        assert_eq!(reopened.latest_insight().unwrap().unwrap().step, 20);
        let blocks = reopened.blocks().unwrap();
        assert_eq!(blocks.iter().map(|b| b.step).collect::<Vec<_>>(), [10, 20]);
        assert_eq!(blocks[1].act_rms, [1.5, 20.0]);
    }

    #[test]
    fn a_damaged_row_is_an_error_naming_its_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::create(dir.path(), &RunSpec::default()).unwrap();
        store
            .conn()
            .execute("INSERT INTO insights VALUES (5, 'not json')", [])
            .unwrap();
        let err = store.insights().unwrap_err().to_string();
        assert!(err.contains("table insights"), "{err}");
    }
}
