//! Model-based property test: random op sequences against each store, compared with the
//! reference model in `queuectl::testing::model` (nothing lost or duplicated, no two live claims
//! on one job, attempts within budget, counts conserved).

use std::sync::Arc;

use proptest::prelude::*;
use queuectl::testing::model::{run_ops, Op};
use queuectl::JobStore;
use queuectl_store_conformance::{Fault, FaultyStore};
use queuectl_store_memory::MemoryStore;
use queuectl_store_sqlite::SqliteStore;

pub(crate) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (-2i8..3, prop_oneof![Just(0u8), 0u8..30], 0u8..4)
            .prop_map(|(priority, delay_secs, max_retries)| Op::Enqueue { priority, delay_secs, max_retries }),
        4 => (any::<u8>(), 0u8..5).prop_map(|(worker, limit)| Op::Claim { worker, limit }),
        3 => any::<u16>().prop_map(|pick| Op::Succeed { pick }),
        3 => (any::<u16>(), any::<u8>()).prop_map(|(pick, exit_code)| Op::Fail { pick, exit_code }),
        1 => any::<u16>().prop_map(|pick| Op::Timeout { pick }),
        1 => any::<u16>().prop_map(|pick| Op::Renew { pick }),
        3 => prop_oneof![0u32..2_000, 10_000u32..40_000].prop_map(|millis| Op::Advance { millis }),
        1 => any::<u8>().prop_map(|worker| Op::Crash { worker }),
        2 => Just(Op::Recover),
        1 => any::<u16>().prop_map(|pick| Op::RequeueDead { pick }),
        1 => Just(Op::RequeueAllDead),
        1 => any::<u16>().prop_map(|pick| Op::Cancel { pick }),
        1 => any::<u16>().prop_map(|pick| Op::LateFinish { pick }),
    ]
}

pub(crate) fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..120)
}

/// Runs `ops` on `store` with one fault armed on a call the run is sure to make: a dry run
/// on `dry` counts the calls, and `pick` chooses one of them. Fails if the run diverges
/// from the model or the fault was not hit (a case whose fault fell past the end of the
/// run would test nothing).
fn run_with_a_fault_that_hits<S: JobStore, D: JobStore>(
    store: S,
    dry: D,
    ops: &[Op],
    pick: prop::sample::Index,
) -> Result<(), String> {
    let counting = Arc::new(FaultyStore::new(dry));
    run_ops(Arc::clone(&counting), ops).map_err(|e| format!("dry run: {e}"))?;
    let calls = usize::try_from(counting.calls()).unwrap_or(usize::MAX);
    if calls == 0 {
        return Ok(());
    }
    let fault_at = u64::try_from(pick.index(calls)).unwrap_or(0) + 1;
    let store = Arc::new(FaultyStore::new(store));
    store.fail_nth_call(fault_at, Fault::Busy);
    run_ops(Arc::clone(&store), ops)?;
    if store.faults_injected() != 1 {
        return Err(format!(
            "the fault on call {fault_at} of {calls} was not hit"
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn memory_store_matches_the_model(ops in ops(), pick in any::<prop::sample::Index>()) {
        let r = run_with_a_fault_that_hits(MemoryStore::new(), MemoryStore::new(), &ops, pick);
        prop_assert!(r.is_ok(), "{}", r.err().unwrap_or_default());
    }
}

proptest! {
    // Each case opens fresh SQLite files; fewer cases keep the suite fast.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_store_matches_the_model(ops in ops(), pick in any::<prop::sample::Index>()) {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| SqliteStore::open(dir.path().join(name)).unwrap();
        let r = run_with_a_fault_that_hits(open("q.db"), open("dry.db"), &ops, pick);
        prop_assert!(r.is_ok(), "{}", r.err().unwrap_or_default());
    }
}

/// A fixed scenario that exercises every op kind, so a broken runner cannot pass vacuously.
#[test]
fn model_run_covers_claims_failures_recovery_and_stale_finishes() {
    let ops = vec![
        Op::Enqueue {
            priority: 0,
            delay_secs: 0,
            max_retries: 2,
        },
        Op::Enqueue {
            priority: 1,
            delay_secs: 0,
            max_retries: 1,
        },
        Op::Claim {
            worker: 0,
            limit: 2,
        },
        Op::Fail {
            pick: 0,
            exit_code: 3,
        }, // priority-1 job: budget 1 → dead
        Op::Advance { millis: 16_000 }, // the other claim's lease expires
        Op::Recover,                    // → pending, interrupts 1
        Op::LateFinish { pick: 0 },     // old token → stale
        Op::Claim {
            worker: 1,
            limit: 5,
        },
        Op::Fail {
            pick: 0,
            exit_code: 1,
        }, // attempts 1 of 2 → failed, backoff 2 s
        Op::Advance { millis: 2_000 },
        Op::Claim {
            worker: 1,
            limit: 5,
        },
        Op::Succeed { pick: 0 },
        Op::RequeueDead { pick: 1 },
        Op::Claim {
            worker: 2,
            limit: 1,
        },
        Op::Timeout { pick: 0 },
        Op::Cancel { pick: 0 },
    ];
    let stats = run_ops(MemoryStore::new(), &ops).expect("model run");
    assert_eq!(stats.enqueued, 2);
    assert_eq!(stats.recovered, 1);
    assert_eq!(stats.stale_rejected, 1);
    assert_eq!(stats.finished, 4);
}

/// An injected store failure is tolerated only if it changed nothing: the run still
/// matches the model, and the fault was really hit.
#[test]
fn model_run_survives_an_injected_fault_without_divergence() {
    for n in 1..=12 {
        let store = FaultyStore::new(MemoryStore::new());
        store.fail_nth_call(n, Fault::Busy);
        let ops = vec![
            Op::Enqueue {
                priority: 0,
                delay_secs: 0,
                max_retries: 2,
            },
            Op::Enqueue {
                priority: 0,
                delay_secs: 0,
                max_retries: 2,
            },
            Op::Claim {
                worker: 0,
                limit: 2,
            },
            Op::Fail {
                pick: 0,
                exit_code: 1,
            },
            Op::Succeed { pick: 0 },
            Op::Advance { millis: 30_000 },
            Op::Recover,
        ];
        let stats = run_ops(store, &ops).unwrap_or_else(|e| panic!("fault at call {n}: {e}"));
        assert_eq!(
            stats.store_errors, 1,
            "fault at call {n} was not hit by an op"
        );
    }
}

#[cfg(feature = "postgres")]
proptest! {
    // Each case creates (and drops) a PostgreSQL schema.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn postgres_store_matches_the_model(ops in ops(), pick in any::<prop::sample::Index>()) {
        let Some(schema) = crate::support::pg::PgSchema::new() else { return Ok(()); };
        // The dry run only counts calls: the memory store answers as PostgreSQL does.
        let r = run_with_a_fault_that_hits(schema.store(), MemoryStore::new(), &ops, pick);
        prop_assert!(r.is_ok(), "{}", r.err().unwrap_or_default());
    }
}
