//! `queuectl prune [--older-than D] [--state S]… [--dry-run]`: delete finished jobs.

use queuectl::JobState;

use crate::cli::args::PruneArgs;
use crate::cli::open_store::open;
use crate::cli::output::print_lines;

pub(crate) fn run(db: Option<&str>, a: &PruneArgs) -> anyhow::Result<()> {
    let (sched, _) = open(db)?;
    let mut states: Vec<JobState> = Vec::new();
    for s in &a.states {
        let s = JobState::from(*s);
        if !states.contains(&s) {
            states.push(s);
        }
    }
    if states.is_empty() {
        states = vec![JobState::Completed, JobState::Cancelled];
    }
    let now = sched.now();
    let rules: Vec<(JobState, queuectl::Timestamp)> = match a.older_than {
        Some(age) => states.iter().map(|s| (*s, now.sub(age))).collect(),
        None => {
            let by_retention = sched.retention_rules(&sched.settings()?);
            let kept: Vec<&str> = states
                .iter()
                .filter(|s| !by_retention.iter().any(|(r, _)| r == *s))
                .map(|s| s.as_str())
                .collect();
            if !kept.is_empty() {
                eprintln!(
                    "keeping {} jobs: their retention setting is 0 (keep forever); \
                     give --older-than to prune them anyway",
                    kept.join(" and ")
                );
            }
            by_retention
                .into_iter()
                .filter(|(s, _)| states.contains(s))
                .collect()
        }
    };
    let n = sched.prune_finished(&rules, a.dry_run)?.total();
    // Exactly the contract's words, `pruned N jobs`, whatever N: scripts match on them.
    let verb = if a.dry_run { "would prune" } else { "pruned" };
    print_lines([format!("{verb} {n} jobs")])
}
