//! The objectives a run can name: the built-in ones, one line each, and any registered at run
//! time.

use super::{Objective, ObjectiveKind, contrastive, cosent, grit, linkbert, masked, next_token};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

/// Registered objectives in the order the studio lists them.
static REGISTRY: LazyLock<RwLock<Vec<Arc<dyn Objective>>>> = LazyLock::new(|| {
    let built_in: Vec<Arc<dyn Objective>> = vec![
        Arc::new(next_token::NextToken),
        Arc::new(masked::Masked),
        Arc::new(contrastive::Contrastive),
        Arc::new(grit::Grit),
        Arc::new(linkbert::LinkBert),
        Arc::new(cosent::Cosent),
    ];
    RwLock::new(built_in)
});

/// Adds `objective` to the ones runs can name. One registered earlier under the same name is
/// replaced (in its place in the list), so registering twice is harmless.
pub fn register(objective: Arc<dyn Objective>) {
    // The list is only ever replaced or pushed to, so a panic elsewhere while the lock was
    // held cannot have left it half-written: a poisoned lock is safe to use.
    let mut all = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    let kind = objective.kind();
    match all.iter_mut().find(|o| o.kind() == kind) {
        Some(slot) => *slot = objective,
        None => all.push(objective),
    }
}

/// The objective registered under `kind`'s name.
pub fn lookup(kind: &ObjectiveKind) -> Option<Arc<dyn Objective>> {
    REGISTRY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|o| o.kind() == *kind)
        .cloned()
}

/// The names of every registered objective, in order.
pub fn kinds() -> Vec<ObjectiveKind> {
    REGISTRY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|o| o.kind())
        .collect()
}
