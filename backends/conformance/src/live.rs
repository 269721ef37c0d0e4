//! Cases for live output: what a running attempt publishes (`put_live_output`, guarded by
//! its claim token, capped), what `live_output` reads back, and every attempt's output kept
//! in its history entry across retries, recoveries and `requeue_dead`.

use queuectl_store::{
    ClaimToken, Guarded, JobId, JobOutput, JobState, JobStore, LeaseRef, LiveOutput, StoreError,
    TransitionKind, OUTPUT_LIMIT,
};

use crate::fixture::{
    at, claim_one, enqueue_all, execution, lease_of, new_job_with_id, transition, T0,
};
use crate::TestStore;

fn live(stdout: &str, stderr: &str) -> LiveOutput {
    LiveOutput {
        stdout: stdout.to_owned(),
        stderr: stderr.to_owned(),
        ..LiveOutput::default()
    }
}

/// The holder of the claim publishes; `live_output` returns exactly that, replaced by the
/// next publication; a job that is not running, or has published nothing, has none.
pub fn live_output_is_published_under_the_claim_and_read_back<S: JobStore>(store: TestStore<S>) {
    enqueue_all(&*store, &[new_job_with_id("a"), new_job_with_id("idle")]);
    let id = JobId::new("a");
    assert_eq!(store.live_output(&id).expect("live_output"), None);
    let job = claim_one(&*store, T0);
    assert_eq!(job.id, id);
    assert_eq!(store.live_output(&id).expect("nothing yet"), None);

    let first = live("line 1\n", "");
    let put = store.put_live_output(&lease_of(&job), &first, at(1));
    assert_eq!(put.expect("put"), Guarded::Applied);
    assert_eq!(store.live_output(&id).expect("read"), Some(first));
    let second = live("line 1\nline 2\n", "warn ✗\n");
    let put = store.put_live_output(&lease_of(&job), &second, at(2));
    assert_eq!(put.expect("put"), Guarded::Applied);
    assert_eq!(store.live_output(&id).expect("read"), Some(second));

    // Publishing changes nothing else about the job.
    let after = store.get(&id).expect("get");
    assert_eq!(after, job);
    assert_eq!(
        store.live_output(&JobId::new("idle")).expect("pending"),
        None
    );
    assert!(matches!(
        store.live_output(&JobId::new("missing")),
        Err(StoreError::NotFound(_))
    ));
}

/// A wrong token, a job not running and a missing job are `Stale` and write nothing; a worker
/// whose job was recovered and claimed again cannot write into the new owner's attempt.
pub fn put_live_output_is_guarded_by_the_claim_token<S: JobStore>(store: TestStore<S>) {
    enqueue_all(&*store, &[new_job_with_id("a")]);
    let job = claim_one(&*store, T0);
    let wrong = LeaseRef {
        id: job.id.clone(),
        token: ClaimToken(job.claim_token.map_or(1, |t| t.0 ^ 1)),
    };
    let put = store.put_live_output(&wrong, &live("intruder", ""), at(1));
    assert_eq!(put.expect("put"), Guarded::Stale);
    assert_eq!(store.live_output(&job.id).expect("read"), None);
    let missing = LeaseRef {
        id: JobId::new("missing"),
        token: lease_of(&job).token,
    };
    let put = store.put_live_output(&missing, &live("x", ""), at(1));
    assert_eq!(put.expect("put"), Guarded::Stale);

    // The old owner published, lost the job to a recovery, and a new owner claimed it.
    let put = store.put_live_output(&lease_of(&job), &live("old owner\n", ""), at(1));
    assert_eq!(put.expect("put"), Guarded::Applied);
    let recovered = TransitionKind::Recovered {
        only_if_expired: false,
    };
    let results = store
        .finish(&[transition(&job, recovered)], at(2))
        .expect("recover");
    assert_eq!(results, [Guarded::Applied]);
    assert_eq!(
        store.live_output(&job.id).expect("read"),
        None,
        "an interrupted attempt's live output goes with it"
    );
    let again = claim_one(&*store, at(3));
    assert_eq!(again.id, job.id);
    assert_eq!(store.live_output(&job.id).expect("read"), None);
    let put = store.put_live_output(&lease_of(&job), &live("late write\n", ""), at(4));
    assert_eq!(put.expect("put"), Guarded::Stale);
    assert_eq!(store.live_output(&job.id).expect("read"), None);
    let put = store.put_live_output(&lease_of(&again), &live("new owner\n", ""), at(4));
    assert_eq!(put.expect("put"), Guarded::Applied);
    let put = store.put_live_output(&lease_of(&job), &live("late write\n", ""), at(5));
    assert_eq!(put.expect("put"), Guarded::Stale);
    assert_eq!(
        store.live_output(&job.id).expect("read"),
        Some(live("new owner\n", ""))
    );

    // A job that is not processing, even under a token it once had.
    enqueue_all(&*store, &[new_job_with_id("b")]);
    let pending = LeaseRef {
        id: JobId::new("b"),
        token: lease_of(&job).token,
    };
    let put = store.put_live_output(&pending, &live("x", ""), at(6));
    assert_eq!(put.expect("put"), Guarded::Stale);
    assert_eq!(store.live_output(&JobId::new("b")).expect("read"), None);
}

/// Stored live output respects the caps: each stream keeps its last `OUTPUT_LIMIT` bytes
/// (on a character boundary), and the bytes dropped are added to its cut count.
pub fn live_output_is_capped_keeping_the_tail<S: JobStore>(store: TestStore<S>) {
    enqueue_all(&*store, &[new_job_with_id("big")]);
    let job = claim_one(&*store, T0);
    let head = "h".repeat(1000);
    let tail = "€".repeat(OUTPUT_LIMIT / 3); // 3 bytes each: 65535 bytes
    let big = LiveOutput {
        stdout: format!("{head}{tail}"),
        stderr: "e".repeat(OUTPUT_LIMIT + 5),
        stdout_cut: 7,
        stderr_cut: 0,
    };
    let put = store.put_live_output(&lease_of(&job), &big, at(1));
    assert_eq!(put.expect("put"), Guarded::Applied);
    let got = store
        .live_output(&job.id)
        .expect("read")
        .expect("published");
    assert!(got.stdout.len() <= OUTPUT_LIMIT, "{}", got.stdout.len());
    assert!(got.stdout.ends_with(&tail), "the tail is kept");
    assert_eq!(
        got.stdout_cut + got.stdout.len() as u64,
        7 + big.stdout.len() as u64,
        "every byte is either kept or counted as cut"
    );
    assert_eq!(got.stderr.len(), OUTPUT_LIMIT);
    assert_eq!(got.stderr_cut, 5);
    let shown = got.to_output();
    assert!(
        shown
            .stderr
            .starts_with("[queuectl: output truncated: 5 bytes cut, kept the last 65536]\n"),
        "{}",
        &shown.stderr[..80]
    );
}

/// Each finished attempt keeps its own output in its history entry, through a failure and
/// its retry, a recovery, and `requeue_dead`; live output is gone once an attempt ends; an
/// attempt that printed nothing has empty output.
pub fn every_attempt_keeps_its_output_in_history<S: JobStore>(store: TestStore<S>) {
    let mut new = new_job_with_id("j");
    new.max_retries = 2;
    enqueue_all(&*store, &[new]);

    // Attempt 1 publishes while it runs, then fails.
    let first = claim_one(&*store, T0);
    let put = store.put_live_output(&lease_of(&first), &live("one so far\n", ""), at(1));
    assert_eq!(put.expect("put"), Guarded::Applied);
    let failed = TransitionKind::Failed {
        execution: execution(1, "one\n", "bad\n"),
        error: "exit code 1".to_owned(),
        retry_at: at(3),
    };
    let r = store.finish(&[transition(&first, failed)], at(2));
    assert_eq!(r.expect("finish"), [Guarded::Applied]);
    assert_eq!(store.live_output(&first.id).expect("read"), None);

    // A run that is interrupted leaves no history entry and no output.
    let interrupted = claim_one(&*store, at(3));
    let put = store.put_live_output(&lease_of(&interrupted), &live("lost\n", ""), at(4));
    assert_eq!(put.expect("put"), Guarded::Applied);
    let recovered = TransitionKind::Recovered {
        only_if_expired: false,
    };
    let r = store.finish(&[transition(&interrupted, recovered)], at(5));
    assert_eq!(r.expect("recover"), [Guarded::Applied]);

    // Attempt 2 prints nothing and dies; `requeue_dead`; attempt 3 succeeds.
    let second = claim_one(&*store, at(6));
    let dead = TransitionKind::Dead {
        execution: execution(2, "", ""),
        error: "exit code 2".to_owned(),
    };
    let r = store.finish(&[transition(&second, dead)], at(7));
    assert_eq!(r.expect("finish"), [Guarded::Applied]);
    store.requeue_dead(&first.id, at(8)).expect("requeue_dead");
    let third = claim_one(&*store, at(8));
    let done = TransitionKind::Completed {
        execution: execution(0, "three\n", ""),
    };
    let r = store.finish(&[transition(&third, done)], at(9));
    assert_eq!(r.expect("finish"), [Guarded::Applied]);

    let record = store.get_record(&first.id).expect("get_record");
    assert_eq!(record.job.state, JobState::Completed);
    let outputs: Vec<(u32, &str, &str)> = record
        .history
        .iter()
        .map(|h| {
            (
                h.attempt,
                h.output.stdout.as_str(),
                h.output.stderr.as_str(),
            )
        })
        .collect();
    assert_eq!(
        outputs,
        [(1, "one\n", "bad\n"), (2, "", ""), (1, "three\n", "")]
    );
    assert_eq!(
        record.output,
        Some(JobOutput {
            stdout: "three\n".to_owned(),
            stderr: String::new(),
        })
    );
    assert_eq!(store.live_output(&first.id).expect("read"), None);
}
