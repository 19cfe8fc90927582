//! Which fields sync which way (R11), how incoming Salesforce data meets local edits, and
//! converted Leads (R15).

use super::create::split_name;
use crate::ports::FieldChange;
use crate::{Customer, CustomerFields, PhoneNumber, SfLink, SfObject, SfRecord, SyncedField};

/// R11: is this field written back to a record of this object? Address never is (it is not a
/// `SyncedField` at all); Company only on a Lead (a Contact's company is Account.Name).
pub fn writes_back(field: SyncedField, object: SfObject) -> bool {
    !(field == SyncedField::Company && object == SfObject::Contact)
}

/// The customer after applying an incoming record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub number: PhoneNumber,
    pub fields: CustomerFields,
    pub dirty: Vec<SyncedField>,
    pub link: SfLink,
    /// Anything differs from the customer as it was.
    pub changed: bool,
}

/// Applies a Salesforce record to the customer linked to it (R11).
///
/// A synced field edited locally after the record's last modification keeps the local value
/// (it will be written back); otherwise Salesforce's value wins and the field is clean.
/// Import-only fields always take Salesforce's value. When the values already agree (the
/// echo of our own write-back), nothing changes.
pub fn merge_incoming(customer: &Customer, record: &SfRecord, number: &PhoneNumber) -> Merged {
    let object = record.record.object;
    let incoming = record.customer_fields();
    let local_wins = |f: SyncedField| {
        writes_back(f, object)
            && customer.dirty.contains(&f)
            && customer
                .edited_at
                .is_some_and(|at| at > record.last_modified)
    };
    let pick = |f: SyncedField, local: &Option<String>, theirs: &Option<String>| {
        if local_wins(f) {
            local.clone()
        } else {
            theirs.clone()
        }
    };
    let fields = CustomerFields {
        name: pick(SyncedField::Name, &customer.fields.name, &incoming.name),
        email: pick(SyncedField::Email, &customer.fields.email, &incoming.email),
        memo: pick(SyncedField::Memo, &customer.fields.memo, &incoming.memo),
        company: pick(
            SyncedField::Company,
            &customer.fields.company,
            &incoming.company,
        ),
        address: incoming.address.clone(),
    };
    let number = if local_wins(SyncedField::Phone) {
        customer.number.clone()
    } else {
        number.clone()
    };
    let dirty: Vec<SyncedField> = customer
        .dirty
        .iter()
        .copied()
        .filter(|f| local_wins(*f))
        .collect();
    let link = SfLink {
        record: record.record.clone(),
        system_modstamp: Some(record.system_modstamp),
    };
    let changed = fields != customer.fields
        || number.e164() != customer.number.e164()
        || number.raw() != customer.number.raw()
        || dirty != customer.dirty
        || customer.link.as_ref() != Some(&link);
    Merged {
        number,
        fields,
        dirty,
        link,
        changed,
    }
}

/// R11: the write-back for a customer's dirty fields, for the record it is linked to.
pub fn write_back_changes(customer: &Customer, object: SfObject) -> Vec<FieldChange> {
    let mut dirty = customer.dirty.clone();
    dirty.sort();
    dirty.dedup();
    dirty
        .into_iter()
        .filter(|f| writes_back(*f, object))
        .filter_map(|f| match f {
            SyncedField::Phone => Some(FieldChange::Phone(Some(customer.number.raw().to_owned()))),
            SyncedField::Name => customer.fields.name.as_deref().and_then(split_name).map(
                |(last_name, first_name)| FieldChange::Name {
                    last_name,
                    first_name,
                },
            ),
            SyncedField::Email => Some(FieldChange::Email(customer.fields.email.clone())),
            SyncedField::Memo => Some(FieldChange::Description(customer.fields.memo.clone())),
            SyncedField::Company => Some(FieldChange::Company(customer.fields.company.clone())),
        })
        .collect()
}

/// R15: what a converted Lead means for the customer linked to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conversion {
    /// Relink to the converted Contact; its data wins (its Phone is the customer's number).
    Relink(Box<Merged>),
    /// The Contact has no (valid) Phone, or is gone: the customer is unlinked.
    Unlink,
}

/// R15: `contact` is the Lead's `ConvertedContactId` as read from Salesforce (`None` when it
/// could not be read).
pub fn follow_conversion(customer: &Customer, contact: Option<&SfRecord>) -> Conversion {
    let Some(contact) = contact else {
        return Conversion::Unlink;
    };
    let Some(number) = contact
        .phone
        .as_deref()
        .and_then(|p| PhoneNumber::parse(p).ok())
    else {
        return Conversion::Unlink;
    };
    // From now on the Contact's data wins: local edits made against the Lead do not carry over.
    let fresh = Customer {
        dirty: vec![],
        edited_at: None,
        ..customer.clone()
    };
    Conversion::Relink(Box::new(merge_incoming(&fresh, contact, &number)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CustomerId, SalesforceId, SalesforceRecordRef};
    use chrono::{DateTime, TimeZone, Utc};

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 0, 0, 0)
            .single()
            .unwrap()
    }

    fn record(object: SfObject, phone: &str, modified: u32) -> SfRecord {
        let id = match object {
            SfObject::Lead => "00Q000000000001",
            SfObject::Contact => "003000000000001",
        };
        SfRecord {
            record: SalesforceRecordRef {
                object,
                id: SalesforceId::parse(id).unwrap(),
            },
            phone: Some(phone.into()),
            last_name: Some("電話".into()),
            first_name: Some("太郎".into()),
            company: Some("SF社".into()),
            email: Some("sf@example.jp".into()),
            address: Some("東京都新宿区".into()),
            description: Some("SFメモ".into()),
            is_converted: false,
            converted_contact_id: None,
            system_modstamp: at(modified),
            last_modified: at(modified),
        }
    }

    fn customer(dirty: Vec<SyncedField>, edited: Option<u32>) -> Customer {
        Customer {
            id: CustomerId(1),
            number: PhoneNumber::parse("03-1111-2222").unwrap(),
            fields: CustomerFields {
                name: Some("ローカル 名前".into()),
                company: Some("ローカル社".into()),
                email: Some("local@example.jp".into()),
                address: Some("大阪府".into()),
                memo: Some("ローカルメモ".into()),
            },
            link: None,
            dirty,
            edited_at: edited.map(at),
        }
    }

    #[test]
    fn r11_synced_fields_both_ways_address_and_contact_company_import_only() {
        for f in SyncedField::ALL {
            assert!(writes_back(f, SfObject::Lead), "{f:?} on Lead");
        }
        assert!(!writes_back(SyncedField::Company, SfObject::Contact));
        assert!(writes_back(SyncedField::Name, SfObject::Contact));
    }

    #[test]
    fn r11_clean_customer_takes_salesforce_values() {
        let c = customer(vec![], None);
        let r = record(SfObject::Lead, "03-9999-0000", 10);
        let n = PhoneNumber::parse("03-9999-0000").unwrap();
        let m = merge_incoming(&c, &r, &n);
        assert_eq!(m.fields, r.customer_fields());
        assert_eq!(m.number.e164(), "+81399990000");
        assert!(m.changed);
        assert!(m.dirty.is_empty());
    }

    #[test]
    fn r11_newer_local_edit_wins_and_stays_dirty_older_loses() {
        let all = SyncedField::ALL.to_vec();
        let r = record(SfObject::Lead, "03-9999-0000", 10);
        let n = PhoneNumber::parse("03-9999-0000").unwrap();
        // Edited on the 12th, record modified on the 10th: local wins.
        let newer = merge_incoming(&customer(all.clone(), Some(12)), &r, &n);
        assert_eq!(newer.fields.name.as_deref(), Some("ローカル 名前"));
        assert_eq!(newer.fields.company.as_deref(), Some("ローカル社"));
        assert_eq!(newer.number.e164(), "+81311112222");
        assert_eq!(
            newer.fields.address.as_deref(),
            Some("東京都新宿区"),
            "address is import-only"
        );
        assert_eq!(newer.dirty, all);
        // Edited on the 5th, record modified on the 10th: Salesforce wins.
        let older = merge_incoming(&customer(all, Some(5)), &r, &n);
        assert_eq!(older.fields, r.customer_fields());
        assert!(older.dirty.is_empty());
    }

    #[test]
    fn r11_contact_company_never_kept_from_local_edit() {
        let r = record(SfObject::Contact, "03-9999-0000", 10);
        let n = PhoneNumber::parse("03-9999-0000").unwrap();
        let m = merge_incoming(&customer(vec![SyncedField::Company], Some(12)), &r, &n);
        assert_eq!(m.fields.company.as_deref(), Some("SF社"));
        assert!(m.dirty.is_empty());
    }

    #[test]
    fn r11_echo_of_our_write_does_not_bounce() {
        let r = record(SfObject::Lead, "03-9999-0000", 10);
        let n = PhoneNumber::parse("03-9999-0000").unwrap();
        let mut c = customer(vec![], None);
        c.fields = r.customer_fields();
        c.number = n.clone();
        c.link = Some(SfLink {
            record: r.record.clone(),
            system_modstamp: Some(r.system_modstamp),
        });
        let m = merge_incoming(&c, &r, &n);
        assert!(!m.changed);
    }

    #[test]
    fn r11_write_back_changes_for_dirty_fields_only() {
        let c = customer(
            vec![SyncedField::Name, SyncedField::Company, SyncedField::Phone],
            Some(1),
        );
        let lead = write_back_changes(&c, SfObject::Lead);
        assert_eq!(
            lead,
            vec![
                FieldChange::Phone(Some("03-1111-2222".into())),
                FieldChange::Name {
                    last_name: "ローカル".into(),
                    first_name: Some("名前".into())
                },
                FieldChange::Company(Some("ローカル社".into())),
            ]
        );
        let contact = write_back_changes(&c, SfObject::Contact);
        assert!(!contact.iter().any(|f| matches!(f, FieldChange::Company(_))));
        assert_eq!(contact.len(), 2);
    }

    #[test]
    fn r15_converted_lead_relinks_to_contact_whose_data_wins() {
        let c = customer(vec![SyncedField::Name], Some(20));
        let contact = record(SfObject::Contact, "090-1234-5678", 10);
        match follow_conversion(&c, Some(&contact)) {
            Conversion::Relink(m) => {
                assert_eq!(m.link.record, contact.record);
                assert_eq!(m.number.e164(), "+819012345678");
                assert_eq!(m.fields.name.as_deref(), Some("電話 太郎"));
                assert!(m.dirty.is_empty());
            }
            other => panic!("expected relink, got {other:?}"),
        }
    }

    #[test]
    fn r15_converted_to_contact_without_phone_unlinks() {
        let c = customer(vec![], None);
        let mut contact = record(SfObject::Contact, "", 10);
        contact.phone = None;
        assert_eq!(follow_conversion(&c, Some(&contact)), Conversion::Unlink);
        assert_eq!(follow_conversion(&c, None), Conversion::Unlink);
    }
}
