//! Application state for handlers: values given to the pool once
//! ([`WorkerPoolBuilder::state`](super::WorkerPoolBuilder::state)) and looked up by type
//! from every execution's [`JobContext`](super::JobContext), like apalis's `Data<T>` or
//! effectum's job context.
//!
//! The map holds one `Arc<T>` per type `T`, which may be unsized (`dyn Mailer`), so a test
//! can register a fake behind the same trait object the application registers its real
//! client as. Lookups are by type: two values of the same type need two newtypes.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Shared values by type; cheap to clone (every value sits behind an `Arc`).
#[derive(Clone, Default)]
pub(crate) struct StateMap {
    /// Each value is an `Arc<T>` stored under `TypeId::of::<T>()`, boxed once more as
    /// `dyn Any` so that `T` may be unsized.
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    /// Type names, for `Debug`.
    names: Vec<&'static str>,
}

impl StateMap {
    /// Registers `value` as the `T`, replacing an earlier one.
    pub(crate) fn insert<T: ?Sized + Send + Sync + 'static>(&mut self, value: Arc<T>) {
        if self
            .values
            .insert(TypeId::of::<T>(), Arc::new(value))
            .is_none()
        {
            self.names.push(std::any::type_name::<T>());
        }
    }

    /// The registered `T`.
    pub(crate) fn get<T: ?Sized + 'static>(&self) -> Result<&T, MissingState> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<Arc<T>>())
            .map(|value| &**value)
            .ok_or(MissingState {
                type_name: std::any::type_name::<T>(),
            })
    }
}

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(&self.names).finish()
    }
}

/// A handler asked its [`JobContext`](super::JobContext) for state of a type nobody gave
/// the pool. It is an ordinary error, so `ctx.state::<T>()?` fails the attempt with this
/// message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingState {
    type_name: &'static str,
}

impl MissingState {
    /// The name of the type that was asked for.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }
}

impl fmt::Display for MissingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no state of type {} was given to the worker pool (WorkerPoolBuilder::state)",
            self.type_name
        )
    }
}

impl std::error::Error for MissingState {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    trait Greeter: Send + Sync {
        fn greet(&self) -> String;
    }

    struct English;

    impl Greeter for English {
        fn greet(&self) -> String {
            "hello".to_owned()
        }
    }

    #[test]
    fn values_are_found_by_type_sized_or_not() {
        let mut map = StateMap::default();
        map.insert(Arc::new(7_u32));
        map.insert::<dyn Greeter>(Arc::new(English));
        assert_eq!(*map.get::<u32>().unwrap(), 7);
        assert_eq!(map.get::<dyn Greeter>().unwrap().greet(), "hello");
        let missing = map.get::<String>().unwrap_err();
        assert_eq!(missing.type_name(), "alloc::string::String");
        assert_eq!(
            missing.to_string(),
            "no state of type alloc::string::String was given to the worker pool \
             (WorkerPoolBuilder::state)"
        );
    }

    #[test]
    fn a_second_value_of_a_type_replaces_the_first() {
        let mut map = StateMap::default();
        map.insert(Arc::new(1_u8));
        map.insert(Arc::new(2_u8));
        assert_eq!(*map.get::<u8>().unwrap(), 2);
        assert_eq!(format!("{map:?}"), r#"{"u8"}"#);
    }
}
