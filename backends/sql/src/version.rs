//! Versions of the store: whether a store's recorded migrations are all ones this build
//! knows. A store that records one it does not know was migrated by a newer (or another)
//! queuectl; this build must not read or write it, since it cannot know what changed.

use queuectl_store::StoreError;

/// `Ok` when every version in `applied` (the store's migration records) is in `known`
/// (this build's migrations), else [`StoreError::NewerSchema`] naming this build's newest
/// version (`ours`) and the store's newest (`theirs`).
///
/// Membership, not a comparison of the newest versions: migrations are added in parallel,
/// and a store that records one this build lacks is refused even when that one is older
/// than this build's newest. Versions are Diesel's (the digits of the migration directory's
/// timestamp), so the newest is the greatest string.
///
/// # Errors
/// [`StoreError::NewerSchema`] as above.
pub fn check_versions<K: AsRef<str>, A: AsRef<str>>(
    known: &[K],
    applied: &[A],
) -> Result<(), StoreError> {
    let unknown = applied
        .iter()
        .any(|a| !known.iter().any(|k| k.as_ref() == a.as_ref()));
    if !unknown {
        return Ok(());
    }
    let newest =
        |versions: &mut dyn Iterator<Item = &str>| versions.max().unwrap_or("none").to_owned();
    Err(StoreError::NewerSchema {
        ours: newest(&mut known.iter().map(AsRef::as_ref)),
        theirs: newest(&mut applied.iter().map(AsRef::as_ref)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: [&str; 2] = ["20261128000000", "20261202000000"];

    #[test]
    fn a_store_with_known_versions_passes() {
        check_versions(&KNOWN, &["20261128000000"]).expect("older store");
        check_versions(&KNOWN, &KNOWN).expect("same store");
        check_versions(&KNOWN, &[] as &[&str]).expect("fresh store");
    }

    #[test]
    fn a_store_with_a_newer_version_is_refused_naming_both() {
        let e = check_versions(
            &KNOWN,
            &["20261128000000", "20261202000000", "99991231000000"],
        )
        .expect_err("newer");
        match &e {
            StoreError::NewerSchema { ours, theirs } => {
                assert_eq!(ours, "20261202000000");
                assert_eq!(theirs, "99991231000000");
            }
            other => panic!("{other:?}"),
        }
        let text = e.to_string();
        assert!(
            text.contains("20261202000000") && text.contains("99991231000000"),
            "{text}"
        );
    }

    /// A migration added on another branch, older than this build's newest, is unknown too.
    #[test]
    fn an_unknown_older_version_is_refused_too() {
        let e = check_versions(&KNOWN, &["20261128000000", "20261130000000"]).expect_err("unknown");
        assert!(matches!(e, StoreError::NewerSchema { .. }), "{e:?}");
    }
}
