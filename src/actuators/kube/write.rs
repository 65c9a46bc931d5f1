//! Whether a write is an action, its rehearsal or its undo. A rehearsal (`dry-run` mode)
//! sends the same requests with `dryRun=All`: the API server checks them (the object
//! exists, RBAC grants the verb, the patch is valid) and changes nothing; no Event is
//! recorded. An undo first checks that the object still
//! holds what the action set (kept in the journal as `applied`, read back from the server's
//! answer to the action's write): if a person changed it since, the undo leaves it as it is
//! and says why, rather than overwrite their change. Undo Events have their own reasons
//! (`AstreinteUndoScale`…).

use kube::api::{DeleteParams, PatchParams};
use serde_json::Value;

/// The key of `previous` that holds what the action set, for the undo's check. `@` cannot
/// start a ConfigMap key or an annotation name, so it never collides with the data's keys.
pub const APPLIED: &str = "@applied";

/// How a write is meant.
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    Act,
    /// The same requests with `dryRun=All`.
    Rehearse,
    /// Restore what was there before; `applied` is what the action set (`None`: a journal
    /// entry from before it was recorded, which cannot be checked: nothing is restored).
    Undo {
        applied: Option<&'a Value>,
    },
}

impl Write<'_> {
    /// The undo of `previous`, checked against its `applied`.
    pub fn undo_of(previous: &Value) -> Write<'_> {
        Write::Undo {
            applied: previous.get(APPLIED),
        }
    }

    /// The Event reason: `AstreinteScale`, or `AstreinteUndoScale` for an undo.
    pub fn reason(&self, action_reason: &str) -> String {
        match self {
            Write::Act | Write::Rehearse => action_reason.to_owned(),
            Write::Undo { .. } => action_reason.replacen("Astreinte", "AstreinteUndo", 1),
        }
    }

    /// `Err(why)` when this is an undo and `now` (the object's relevant part, read just now)
    /// is not what the action set: someone changed it since.
    pub fn check(&self, object: &str, now: &Value) -> Result<(), String> {
        match self {
            Write::Act | Write::Rehearse => Ok(()),
            Write::Undo { applied: None } => Err(format!(
                "{object}: the journal does not record what astreinte set, so a change made since cannot be ruled out; left as it is"
            )),
            Write::Undo {
                applied: Some(applied),
            } if *applied != now => Err(format!(
                "{object} changed since astreinte's action (now {}, astreinte set {}): left as it is",
                short(now),
                short(applied)
            )),
            Write::Undo { .. } => Ok(()),
        }
    }

    /// "undo: " before an undo's detail, the rehearsal's words before a rehearsal's.
    pub fn prefix(&self) -> &'static str {
        match self {
            Write::Act => "",
            Write::Rehearse => "dry-run accepted by the API server (dryRun=All), would have: ",
            Write::Undo { .. } => "undo: ",
        }
    }

    pub fn is_rehearsal(&self) -> bool {
        matches!(self, Write::Rehearse)
    }

    /// The patch parameters: `dryRun=All` for a rehearsal.
    pub fn patch_params(&self) -> PatchParams {
        match self {
            Write::Rehearse => PatchParams::default().dry_run(),
            _ => PatchParams::default(),
        }
    }

    /// The delete parameters: `dryRun=All` for a rehearsal.
    pub fn delete_params(&self) -> DeleteParams {
        match self {
            Write::Rehearse => DeleteParams {
                dry_run: true,
                ..DeleteParams::default()
            },
            _ => DeleteParams::default(),
        }
    }
}

/// A value for a message, cut to a readable length.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_undo_checks_what_the_action_set() {
        let previous = json!({ "replicas": 3, APPLIED: 4 });
        let undo = Write::undo_of(&previous);
        assert_eq!(undo.check("scale x", &json!(4)), Ok(()));
        let changed = undo.check("scale x", &json!(6)).unwrap_err();
        assert!(
            changed.contains("changed since astreinte's action (now 6, astreinte set 4)"),
            "{changed}"
        );
        assert!(
            Write::undo_of(&json!({ "replicas": 3 }))
                .check("x", &json!(4))
                .is_err()
        );
        assert_eq!(Write::Act.check("x", &json!(1)), Ok(()));
        assert_eq!(undo.reason("AstreinteScale"), "AstreinteUndoScale");
        assert_eq!(Write::Act.reason("AstreinteScale"), "AstreinteScale");
    }
}
