//! The figures of the fault-injection tests (issue 22): what the state had recorded before
//! a fault, what of it was still there afterwards, and one line per injected fault in
//! `$FROYO_FAULT_LOG` (tab-separated) that `bench/reliability.sh --faults` turns into the
//! table of `docs/reliability.md`. Without the variable nothing is written; the checks
//! still run, so a fault that loses data fails its test either way.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Instant;

use froyo::state::Store;

/// What a state held at one moment: each run with its number of events, and each resource
/// record (target, resource).
pub struct Recorded {
    runs: BTreeMap<i64, usize>,
    resources: BTreeSet<(String, String)>,
    taken: Instant,
}

impl Recorded {
    pub fn of(store: &dyn Store) -> Recorded {
        let runs = store
            .runs(100_000)
            .unwrap()
            .into_iter()
            .map(|r| (r.id.0, store.events(r.id).unwrap().len()))
            .collect();
        let resources = store
            .resources(None)
            .unwrap()
            .into_iter()
            .map(|r| (r.target, r.resource))
            .collect();
        Recorded {
            runs,
            resources,
            taken: Instant::now(),
        }
    }

    /// How many records this snapshot holds: runs, their events, resource records.
    pub fn len(&self) -> usize {
        self.runs.len() + self.runs.values().sum::<usize>() + self.resources.len()
    }

    /// What this snapshot held that `store` no longer does: a run gone, events of a run
    /// gone (a run's events are only ever appended), a resource record gone. A record may
    /// change (a later apply updates it); it may not disappear.
    pub fn lost_in(&self, store: &dyn Store) -> usize {
        let now = Recorded::of(store);
        let runs: usize = self
            .runs
            .iter()
            .map(|(id, events)| match now.runs.get(id) {
                None => 1 + events,
                Some(n) => events.saturating_sub(*n),
            })
            .sum();
        runs + self.resources.difference(&now.resources).count()
    }

    /// Asserts that nothing recorded before the fault is gone from `store`, and logs the
    /// fault: `test` and `fault` name it, `outcome` says what the user saw.
    pub fn survived(&self, store: &dyn Store, test: &str, fault: &str, outcome: &str) {
        let lost = self.lost_in(store);
        assert_eq!(lost, 0, "{fault}: {lost} records lost of {}", self.len());
        log(
            test,
            fault,
            outcome,
            self.len(),
            lost,
            self.taken.elapsed().as_secs_f64(),
        );
    }
}

/// Appends one line to `$FROYO_FAULT_LOG`: test, fault, outcome, records before the fault,
/// records lost, seconds from the snapshot to the check.
fn log(test: &str, fault: &str, outcome: &str, before: usize, lost: usize, secs: f64) {
    let Some(path) = std::env::var_os("FROYO_FAULT_LOG") else {
        return;
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let clean = |s: &str| s.replace(['\t', '\n'], " ");
    // One write per line, so tests running in parallel do not interleave.
    let line = format!(
        "{}\t{}\t{}\t{before}\t{lost}\t{secs:.1}\n",
        clean(test),
        clean(fault),
        clean(outcome)
    );
    f.write_all(line.as_bytes()).unwrap();
}
