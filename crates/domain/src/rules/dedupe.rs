//! R14: when several records carry one normalized number, exactly one wins, deterministically.

use crate::{SalesforceRecordRef, SfObject};
use chrono::{DateTime, Utc};

/// A record competing for a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub record: SalesforceRecordRef,
    pub last_modified: DateTime<Utc>,
    /// Already linked to the customer before this decision.
    pub linked: bool,
}

/// R14 order: the linked record; else a Contact over a Lead; else the most recently
/// modified; ties by Id (the smaller wins). Returns the winner and the others (sorted by the
/// same order), or `None` for no candidates. The result does not depend on input order.
pub fn choose_winner(candidates: &[Candidate]) -> Option<(Candidate, Vec<Candidate>)> {
    let mut sorted = candidates.to_vec();
    sorted.sort_by(|a, b| {
        b.linked
            .cmp(&a.linked)
            .then_with(|| rank(a.record.object).cmp(&rank(b.record.object)))
            .then_with(|| b.last_modified.cmp(&a.last_modified))
            .then_with(|| a.record.id.cmp(&b.record.id))
    });
    sorted.dedup_by(|a, b| a.record == b.record);
    let mut it = sorted.into_iter();
    let winner = it.next()?;
    Some((winner, it.collect()))
}

fn rank(o: SfObject) -> u8 {
    match o {
        SfObject::Contact => 0,
        SfObject::Lead => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SalesforceId;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn c(object: SfObject, id: &str, day: u32, linked: bool) -> Candidate {
        Candidate {
            record: SalesforceRecordRef {
                object,
                id: SalesforceId::parse(id).unwrap(),
            },
            last_modified: Utc
                .with_ymd_and_hms(2026, 1, day, 0, 0, 0)
                .single()
                .unwrap(),
            linked,
        }
    }

    #[test]
    fn r14_dedupe_order_linked_then_contact_then_recent_then_id() {
        use SfObject::*;
        let lead_new = c(Lead, "00Q000000000001", 20, false);
        let lead_old = c(Lead, "00Q000000000002", 10, false);
        let contact_old = c(Contact, "003000000000003", 1, false);
        let contact_new = c(Contact, "003000000000004", 5, false);
        let lead_linked = c(Lead, "00Q000000000005", 1, true);
        let tie_a = c(Contact, "003000000000007", 5, false);

        let table: Vec<(Vec<Candidate>, &Candidate)> = vec![
            (vec![lead_old.clone(), lead_new.clone()], &lead_new),
            (vec![lead_new.clone(), contact_old.clone()], &contact_old),
            (vec![contact_old.clone(), contact_new.clone()], &contact_new),
            (
                vec![contact_new.clone(), lead_linked.clone(), lead_new.clone()],
                &lead_linked,
            ),
            (vec![tie_a.clone(), contact_new.clone()], &contact_new),
        ];
        for (input, expected) in table {
            let (winner, losers) = choose_winner(&input).unwrap();
            assert_eq!(&winner, expected);
            assert_eq!(
                losers.len(),
                input.len() - 1,
                "the others are kept as duplicates"
            );
        }
        assert!(choose_winner(&[]).is_none());
    }

    proptest! {
        // R14 property: the winner does not depend on input order.
        #[test]
        fn r14_winner_is_independent_of_order(
            specs in prop::collection::vec((any::<bool>(), 1u32..28, 0u32..50, prop::bool::weighted(0.1)), 1..8),
            seed in any::<u64>(),
        ) {
            let cands: Vec<Candidate> = specs.iter().map(|(contact, day, n, linked)| {
                let (obj, prefix) = if *contact { (SfObject::Contact, "003") } else { (SfObject::Lead, "00Q") };
                c(obj, &format!("{prefix}{n:012}"), *day, *linked)
            }).collect();
            let mut shuffled = cands.clone();
            // deterministic shuffle from the seed
            let mut s = seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            let a = choose_winner(&cands).unwrap().0.record;
            let b = choose_winner(&shuffled).unwrap().0.record;
            prop_assert_eq!(a, b);
        }
    }
}
