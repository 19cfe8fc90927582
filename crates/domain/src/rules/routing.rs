//! The post-call routing decision (R20–R22): linked → write there; unlinked → search;
//! not found → create or skip.

use super::dedupe::{Candidate, choose_winner};
use crate::ports::SkipReason;
use crate::{Customer, IntegrationSettings, PhoneNumber, SalesforceRecordRef, SfObject, SfRecord};

/// First step, from the local customer book only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalRoute {
    /// R20: the customer is linked; the activity goes there.
    Linked(SalesforceRecordRef),
    /// R21: not linked (or no customer yet): search Salesforce.
    Search,
}

pub fn route_local(customer: Option<&Customer>) -> LocalRoute {
    match customer.and_then(|c| c.link.as_ref()) {
        Some(link) => LocalRoute::Linked(link.record.clone()),
        None => LocalRoute::Search,
    }
}

/// Second step, after searching Salesforce by the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchRoute {
    /// R21: found; write there and link the customer. `others` are duplicates (R14).
    Found {
        winner: Box<SfRecord>,
        others: Vec<SalesforceRecordRef>,
    },
    /// R22: not found, `create_customers` on.
    Create(SfObject),
    /// R22: not found, `create_customers` off: "skipped: no match".
    Skip(SkipReason),
}

/// Keeps hits that really are this number, within `sync_targets`, not converted (R15), then
/// lets R14 pick one.
pub fn route_after_search(
    hits: &[SfRecord],
    number: &PhoneNumber,
    s: &IntegrationSettings,
) -> SearchRoute {
    let matching: Vec<&SfRecord> = hits
        .iter()
        .filter(|r| s.sync_targets.contains(r.record.object))
        .filter(|r| !r.is_converted)
        .filter(|r| {
            r.phone
                .as_deref()
                .and_then(|p| PhoneNumber::parse(p).ok())
                .as_ref()
                == Some(number)
        })
        .collect();
    let candidates: Vec<Candidate> = matching
        .iter()
        .map(|r| Candidate {
            record: r.record.clone(),
            last_modified: r.last_modified,
            linked: false,
        })
        .collect();
    if let Some((winner, others)) = choose_winner(&candidates)
        && let Some(found) = matching.iter().find(|r| r.record == winner.record)
    {
        return SearchRoute::Found {
            winner: Box::new((*found).clone()),
            others: others.into_iter().map(|c| c.record).collect(),
        };
    }
    match (s.create_customers, s.create_as) {
        (true, Some(object)) => SearchRoute::Create(object),
        _ => SearchRoute::Skip(SkipReason::NoMatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CustomerFields, CustomerId, SalesforceId, SfLink, SyncTargets};
    use chrono::{TimeZone, Utc};

    fn rec(object: SfObject, id: &str, phone: &str, day: u32) -> SfRecord {
        let t = Utc
            .with_ymd_and_hms(2026, 1, day, 0, 0, 0)
            .single()
            .unwrap();
        SfRecord {
            record: SalesforceRecordRef {
                object,
                id: SalesforceId::parse(id).unwrap(),
            },
            phone: Some(phone.into()),
            last_name: Some("x".into()),
            first_name: None,
            company: None,
            email: None,
            address: None,
            description: None,
            is_converted: false,
            converted_contact_id: None,
            system_modstamp: t,
            last_modified: t,
        }
    }

    #[test]
    fn r20_linked_customer_writes_to_its_record() {
        let link = SalesforceRecordRef {
            object: SfObject::Contact,
            id: SalesforceId::parse("003000000000001").unwrap(),
        };
        let c = Customer {
            id: CustomerId(1),
            number: PhoneNumber::parse("03-1234-5678").unwrap(),
            fields: CustomerFields::default(),
            link: Some(SfLink {
                record: link.clone(),
                system_modstamp: None,
            }),
            dirty: vec![],
            edited_at: None,
        };
        assert_eq!(route_local(Some(&c)), LocalRoute::Linked(link));
        let unlinked = Customer { link: None, ..c };
        assert_eq!(route_local(Some(&unlinked)), LocalRoute::Search);
        assert_eq!(route_local(None), LocalRoute::Search);
    }

    #[test]
    fn r21_r22_search_then_create_or_skip() {
        let n = PhoneNumber::parse("03-1234-5678").unwrap();
        let lead = rec(SfObject::Lead, "00Q000000000001", "(03)1234-5678", 9);
        let contact = rec(SfObject::Contact, "003000000000002", "+81 3 1234 5678", 1);
        let other_number = rec(SfObject::Contact, "003000000000003", "03-1234-5679", 20);
        let mut converted = rec(SfObject::Lead, "00Q000000000004", "0312345678", 25);
        converted.is_converted = true;

        let both = IntegrationSettings::default();
        let leads_only = IntegrationSettings {
            sync_targets: SyncTargets {
                lead: true,
                contact: false,
            },
            ..Default::default()
        };
        let create_leads = IntegrationSettings {
            create_customers: true,
            create_as: Some(SfObject::Lead),
            ..Default::default()
        };

        // R21 + R14: Contact wins over Lead; the Lead is a duplicate.
        match route_after_search(&[lead.clone(), contact.clone()], &n, &both) {
            SearchRoute::Found { winner, others } => {
                assert_eq!(winner.record, contact.record);
                assert_eq!(others, vec![lead.record.clone()]);
            }
            other => panic!("{other:?}"),
        }
        // Only within sync_targets.
        match route_after_search(&[lead.clone(), contact.clone()], &n, &leads_only) {
            SearchRoute::Found { winner, others } => {
                assert_eq!(winner.record, lead.record);
                assert!(others.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // Hits that are another number, or converted Leads, do not count (R13, R15).
        assert_eq!(
            route_after_search(&[other_number.clone(), converted.clone()], &n, &both),
            SearchRoute::Skip(SkipReason::NoMatch)
        );
        // R22: not found → create when on.
        assert_eq!(
            route_after_search(&[], &n, &create_leads),
            SearchRoute::Create(SfObject::Lead)
        );
        assert_eq!(
            route_after_search(&[], &n, &both),
            SearchRoute::Skip(SkipReason::NoMatch)
        );
    }
}
