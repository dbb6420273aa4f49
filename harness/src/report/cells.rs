//! A sweep's matrix built from its cells' case reports: which sweep each
//! cell belongs to, its verdict, its failure, and the evidence its
//! timeline holds (`matrix::Evidence`). Apart from `matrix`, which only
//! holds and shows a matrix, so that the report's format can hold one.

use super::CaseReport;
use super::matrix::{CellReport, Evidence, Matrix, Verdict};
use crate::suite::sweep::Kind;

impl Matrix {
    /// The matrices of every sweep among `reports`, in the order their
    /// first cells come: one per version and run of the program when the
    /// suite compares two.
    pub fn of(reports: &[CaseReport]) -> Vec<Matrix> {
        let mut out: Vec<Matrix> = Vec::new();
        for report in reports {
            let Some(cell) = &report.cell else {
                continue;
            };
            let at = out.iter().position(|m| {
                m.suite == report.suite && m.sweep == cell.sweep && m.version == report.version
            });
            let matrix = match at {
                Some(i) => &mut out[i],
                None => {
                    out.push(Matrix {
                        suite: report.suite.clone(),
                        sweep: cell.sweep.clone(),
                        version: report.version.clone(),
                        phases: Vec::new(),
                        kinds: Vec::new(),
                        cells: Vec::new(),
                    });
                    let last = out.len() - 1;
                    &mut out[last]
                }
            };
            if !matrix.phases.contains(&cell.phase) {
                matrix.phases.push(cell.phase.clone());
            }
            if !matrix.kinds.contains(&cell.kind) {
                matrix.kinds.push(cell.kind);
            }
            let verdict = if report.passed() {
                Verdict::Passed
            } else if report.skipped() {
                Verdict::Skipped
            } else {
                Verdict::Failed
            };
            matrix.cells.push(CellReport {
                phase: cell.phase.clone(),
                kind: cell.kind,
                case: report.name.clone(),
                verdict,
                failed_step: report.failure().and_then(|f| f.step.clone()),
                mismatch: report.failure().and_then(|f| f.mismatch.clone()),
                evidence: Evidence::of(&report.timeline),
            });
        }
        for matrix in &mut out {
            matrix
                .kinds
                .sort_by_key(|k| Kind::ALL.iter().position(|all| all == k));
        }
        out
    }
}
