//! `FaultyStore`: transparent when disarmed, and a fired fault changes nothing.
#![allow(clippy::unwrap_used)]

use queuectl_store::prelude::*;
use queuectl_store::{Guarded, JobFilter, JobId, JobState, StoreError, TransitionKind};
use queuectl_store_conformance::fixture::{
    claim_one, claim_request, execution, new_job_with_id, transition, T0,
};
use queuectl_store_conformance::{Fault, FaultyStore, TestStore};
use queuectl_store_memory::MemoryStore;

/// The whole suite through a disarmed wrapper: it forwards every call unchanged.
mod disarmed {
    use super::*;

    fn make() -> TestStore<FaultyStore<MemoryStore>> {
        TestStore::new(FaultyStore::new(MemoryStore::new()))
    }

    queuectl_store_conformance::store_conformance!(make);
}

#[test]
fn the_nth_call_fails_once_with_the_chosen_fault() {
    let store = FaultyStore::new(MemoryStore::new());
    assert!(!store.is_armed());
    store.fail_nth_call(3, Fault::Backend);
    assert!(store.is_armed());
    store.enqueue(&new_job_with_id("a"), T0).unwrap();
    store.get(&JobId::new("a")).unwrap();
    match store.counts() {
        Err(StoreError::Backend { message, .. }) => {
            assert_eq!(message, "injected fault on call 3 (counts)");
        }
        other => panic!("expected Backend, got {other:?}"),
    }
    assert!(!store.is_armed());
    assert_eq!(store.counts().unwrap().pending, 1);
    assert_eq!((store.calls(), store.faults_injected()), (4, 1));

    store.fail_nth_call(1, Fault::Busy);
    let err = store.list(&JobFilter::default()).unwrap_err();
    assert!(err.is_transient(), "{err}");

    store.fail_nth_call(1, Fault::Busy);
    store.disarm();
    store.list(&JobFilter::default()).unwrap();
    store.fail_nth_call(0, Fault::Busy);
    assert!(!store.is_armed());
    assert_eq!(store.faults_injected(), 2);
}

#[test]
fn a_failed_call_never_reaches_the_inner_store() {
    let store = FaultyStore::new(MemoryStore::new());
    store.enqueue(&new_job_with_id("a"), T0).unwrap();

    store.fail_nth_call(1, Fault::Busy);
    assert!(store.enqueue(&new_job_with_id("b"), T0).is_err());
    assert!(store.inner().get(&JobId::new("b")).is_err());

    store.fail_nth_call(1, Fault::Busy);
    assert!(store.claim(&claim_request("w1", T0, 10)).is_err());
    assert_eq!(store.inner().counts().unwrap().pending, 1);

    let job = claim_one(&store, T0);
    let done = transition(
        &job,
        TransitionKind::Completed {
            execution: execution(0, "", ""),
        },
    );
    store.fail_nth_call(1, Fault::Backend);
    assert!(store.finish(std::slice::from_ref(&done), T0).is_err());
    assert_eq!(
        store.inner().get(&job.id).unwrap().state,
        JobState::Processing
    );
    // The caller may retry: the claim is still held.
    assert_eq!(store.finish(&[done], T0).unwrap(), [Guarded::Applied]);
}

#[test]
fn a_fault_fires_exactly_once_under_concurrent_calls() {
    let store = FaultyStore::new(MemoryStore::new());
    store.fail_nth_call(50, Fault::Busy);
    let failures: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| (0..25).filter(|_| store.counts().is_err()).count()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(failures, 1);
    assert_eq!(store.calls(), 100);
    assert_eq!(store.into_inner().counts().unwrap().total(), 0);
}

#[test]
fn a_lost_acknowledgement_takes_effect_then_fails_once() {
    let store = FaultyStore::new(MemoryStore::new());
    store.fail_nth_call(1, Fault::LostAck);
    let err = store.enqueue(&new_job_with_id("a"), T0).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("after it took effect"), "{err}");
    store
        .inner()
        .get(&JobId::new("a"))
        .expect("the enqueue took effect");
    assert_eq!(store.faults_injected(), 1);
    assert!(!store.is_armed());
    store.enqueue(&new_job_with_id("b"), T0).unwrap();

    // A lost acknowledgement of a call the inner store refused is just that refusal.
    store.fail_nth_call(1, Fault::LostAck);
    assert!(matches!(
        store.enqueue(&new_job_with_id("a"), T0),
        Err(StoreError::Conflict(_))
    ));
    store.counts().unwrap();
    assert_eq!(store.faults_injected(), 1);
}

#[test]
fn a_fault_armed_for_a_method_fires_on_its_next_call_only() {
    let store = FaultyStore::new(MemoryStore::new());
    store.fail_next_call_to("counts", Fault::Busy);
    assert!(store.is_armed());
    store.enqueue(&new_job_with_id("a"), T0).unwrap();
    store.get(&JobId::new("a")).unwrap();
    assert!(matches!(store.counts(), Err(StoreError::Busy(_))));
    assert!(!store.is_armed());
    assert_eq!(store.counts().unwrap().pending, 1);
    assert_eq!(store.faults_injected(), 1);
}
