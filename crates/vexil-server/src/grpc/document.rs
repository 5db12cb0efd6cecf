//! The sync service's flagd documents: each environment version translated
//! once (not once per connection) with the engine's translator, for the
//! hashing scheme the operator's providers use. Flags without an exact
//! flagd form are left out, logged once per version and counted in
//! `/metrics`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use vexil_engine::flagd::to_flagd;
use vexil_engine::model::Bucketing;

use crate::metrics::Metrics;
use crate::plane::EnvSnapshot;

/// One environment version in flagd form.
#[derive(Debug)]
pub(super) struct FlagdDoc {
    /// The flagd JSON document sent to providers.
    pub(super) json: String,
}

/// The translation of one version, made by whoever asks first.
struct Slot {
    version: i64,
    doc: OnceLock<Arc<FlagdDoc>>,
}

/// The latest translated version of each environment.
pub(super) struct Documents {
    providers: Bucketing,
    slots: Mutex<HashMap<i64, Arc<Slot>>>,
    metrics: Arc<Metrics>,
}

impl Documents {
    pub(super) fn new(providers: Bucketing, metrics: Arc<Metrics>) -> Self {
        Documents {
            providers,
            slots: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// The flagd document of `env`'s version.
    pub(super) fn get(&self, env: &EnvSnapshot) -> Arc<FlagdDoc> {
        let version = env.env.version;
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let slot = slots.entry(env.env.id).or_insert_with(|| {
                Arc::new(Slot {
                    version,
                    doc: OnceLock::new(),
                })
            });
            if slot.version < version {
                *slot = Arc::new(Slot {
                    version,
                    doc: OnceLock::new(),
                });
            }
            (slot.version == version).then(|| slot.clone())
        };
        match slot {
            // Concurrent askers of the same version wait for one
            // translation.
            Some(slot) => slot
                .doc
                .get_or_init(|| Arc::new(self.translate(env, true)))
                .clone(),
            // An older version than the kept one (a stream that has not
            // caught up yet): translated, not kept.
            None => Arc::new(self.translate(env, false)),
        }
    }

    /// Translates a version; `latest`: the one kept, whose left-out flags
    /// are logged and counted (an older one was already).
    fn translate(&self, env: &EnvSnapshot, latest: bool) -> FlagdDoc {
        let translation = to_flagd(&env.doc, self.providers);
        let mut value = serde_json::to_value(&translation.document).unwrap_or_default();
        // Vexil's own `bucketing` field is not flagd's: providers get plain
        // flagd (the translator already wrote rollouts for their scheme).
        if let Some(map) = value.as_object_mut() {
            map.remove("bucketing");
        }
        let json = value.to_string();
        let label = env.label();
        if !latest {
            return FlagdDoc { json };
        }
        if !translation.left_out.is_empty() {
            let flags: Vec<String> = translation
                .left_out
                .iter()
                .map(|l| format!("{} ({}: {})", l.flag, l.reason.code(), l.reason))
                .collect();
            tracing::warn!(
                environment = %label,
                version = env.env.version,
                left_out = translation.left_out.len(),
                flags = %flags.join(", "),
                "flags left out of the flagd sync document: in-process flagd providers do not get them"
            );
        }
        self.metrics
            .grpc
            .set_left_out(&label, translation.left_out.len());
        FlagdDoc { json }
    }
}
