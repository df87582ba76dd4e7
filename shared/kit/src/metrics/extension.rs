//! Metrics a service declares for itself (its business counters, the order service's saga
//! durations), registered in the instance's registry the first time they are asked for, so the
//! kit never names a service.

use prometheus_client::registry::Registry;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A service's own set of metrics: built and registered once per instance.
pub trait MetricsExtension: Send + Sync + 'static {
    /// New metrics, registered in `registry`.
    fn register(registry: &mut Registry) -> Self;
}

/// The extensions of one instance, by type.
#[derive(Debug, Default)]
pub(crate) struct Extensions {
    by_type: RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Extensions {
    /// The instance's `T`, registering it in `registry` on first use.
    pub(crate) fn get_or_register<T: MetricsExtension>(
        &self,
        registry: &std::sync::Mutex<Registry>,
    ) -> Arc<T> {
        let id = TypeId::of::<T>();
        if let Some(found) = self
            .by_type
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            return downcast(found.clone());
        }
        let mut by_type = self.by_type.write().unwrap_or_else(|p| p.into_inner());
        let found = by_type.entry(id).or_insert_with(|| {
            let mut registry = registry.lock().unwrap_or_else(|p| p.into_inner());
            Arc::new(T::register(&mut registry))
        });
        downcast(found.clone())
    }
}

fn downcast<T: Any + Send + Sync>(found: Arc<dyn Any + Send + Sync>) -> Arc<T> {
    found
        .downcast::<T>()
        .unwrap_or_else(|_| unreachable!("extensions are stored under their own type id"))
}
