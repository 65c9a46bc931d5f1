//! Reason codes as small numbers, for the score windows: every probe keeps the reasons of its
//! last results, and a 2-byte code instead of a 24-byte `Cow` is most of that window's
//! memory (docs/BENCHMARKS.md). Reason codes are a bounded set (see [`Reason`]); each is
//! interned once for the life of the process.

use std::sync::{Mutex, OnceLock};

use crate::probes::Reason;

/// An interned reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code(u16);

/// Code 1, should more than 65,534 distinct reasons ever be seen (they are a bounded set).
const OTHER: &str = "other_reason";

fn table() -> &'static Mutex<Vec<Reason>> {
    static TABLE: OnceLock<Mutex<Vec<Reason>>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(vec![Reason::Borrowed("ok"), Reason::Borrowed(OTHER)]))
}

impl Code {
    pub fn of(reason: &Reason) -> Code {
        let mut table = table().lock().unwrap_or_else(|e| e.into_inner());
        let index = match table.iter().position(|r| r == reason) {
            Some(i) => i,
            None => {
                table.push(reason.clone());
                table.len() - 1
            }
        };
        u16::try_from(index).map_or(Code(1), Code)
    }

    pub fn reason(self) -> Reason {
        let table = table().lock().unwrap_or_else(|e| e.into_inner());
        table
            .get(usize::from(self.0))
            .cloned()
            .unwrap_or(Reason::Borrowed(OTHER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_give_the_reason_back() {
        let a = Code::of(&Reason::Borrowed("connection_refused"));
        let b = Code::of(&Reason::Owned("connection_refused".to_owned()));
        assert_eq!(a, b);
        assert_eq!(a.reason(), "connection_refused");
        assert_eq!(Code::of(&Reason::Borrowed("ok")).reason(), "ok");
        assert_ne!(Code::of(&Reason::Borrowed("timeout")), a);
    }
}
