//! The things callsync talks about: customers, members, Salesforce records and users.

use crate::{CustomerId, EmailAddress, PhoneNumber, SalesforceId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The two Salesforce objects a customer can be linked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SfObject {
    Lead,
    Contact,
}

impl SfObject {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lead => "Lead",
            Self::Contact => "Contact",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Lead" | "lead" => Some(Self::Lead),
            "Contact" | "contact" => Some(Self::Contact),
            _ => None,
        }
    }
    /// 日本語 label as Salesforce's Japanese UI names the object.
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Lead => "リード",
            Self::Contact => "取引先責任者",
        }
    }
}

impl fmt::Display for SfObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Lead or Contact in the connected org.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SalesforceRecordRef {
    pub object: SfObject,
    pub id: SalesforceId,
}

impl fmt::Display for SalesforceRecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.object, self.id)
    }
}

/// The customer's fields that callsync reads from Salesforce (R10).
///
/// `company` is a Lead's Company or a Contact's Account.Name; `memo` is Description.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerFields {
    pub name: Option<String>,
    pub company: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub memo: Option<String>,
}

/// A field that R11 syncs in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncedField {
    Phone,
    Name,
    Email,
    Memo,
    /// A Lead's Company only; a Contact's company (Account.Name) is import-only.
    Company,
}

impl SyncedField {
    pub const ALL: [SyncedField; 5] = [
        Self::Phone,
        Self::Name,
        Self::Email,
        Self::Memo,
        Self::Company,
    ];
}

/// Where a customer is linked in Salesforce, and the record's `SystemModstamp` when callsync
/// last applied it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SfLink {
    pub record: SalesforceRecordRef,
    pub system_modstamp: Option<DateTime<Utc>>,
}

/// A customer in the phone system's book: one per normalized number per tenant (R18).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: CustomerId,
    pub number: PhoneNumber,
    pub fields: CustomerFields,
    pub link: Option<SfLink>,
    /// Fields edited in the phone system that still have to be written to Salesforce (R11).
    pub dirty: Vec<SyncedField>,
    /// When the phone system last edited a synced field.
    pub edited_at: Option<DateTime<Utc>>,
}

/// A member of the phone system (a user who makes and takes calls).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// `user[id]` in the phone system.
    pub external_id: String,
    pub name: Option<String>,
    pub email: Option<EmailAddress>,
}

/// A Lead or Contact as read from Salesforce, in domain terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SfRecord {
    pub record: SalesforceRecordRef,
    /// `Phone` as stored (as typed). `None` when empty.
    pub phone: Option<String>,
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    /// Lead.Company or Contact.Account.Name.
    pub company: Option<String>,
    pub email: Option<String>,
    /// The compound address flattened for display (postal code, state, city, street).
    pub address: Option<String>,
    pub description: Option<String>,
    /// Leads only.
    pub is_converted: bool,
    /// Leads only: the Contact a converted Lead became (R15).
    pub converted_contact_id: Option<SalesforceId>,
    pub system_modstamp: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
}

impl SfRecord {
    /// The name in the phone system's convention: family name first, one space (R10).
    pub fn full_name(&self) -> Option<String> {
        let parts: Vec<&str> = [self.last_name.as_deref(), self.first_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if parts.is_empty() {
            None
        } else {
            Some(parts.join(" "))
        }
    }

    /// The fields a customer takes from this record (R10).
    pub fn customer_fields(&self) -> CustomerFields {
        CustomerFields {
            name: self.full_name(),
            company: self.company.clone(),
            email: self.email.clone(),
            address: self.address.clone(),
            memo: self.description.clone(),
        }
    }
}

/// A Salesforce User, for owner resolution (R23).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SfUser {
    pub id: SalesforceId,
    pub email: Option<EmailAddress>,
    pub name: String,
    pub active: bool,
}

/// The user who approved the OAuth connection (R7); owns activities no member maps to (R23).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedUser {
    pub user_id: SalesforceId,
    pub org_id: SalesforceId,
    pub email: Option<EmailAddress>,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn record(last: Option<&str>, first: Option<&str>) -> SfRecord {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap();
        SfRecord {
            record: SalesforceRecordRef {
                object: SfObject::Lead,
                id: SalesforceId::parse("00Q000000000001").unwrap(),
            },
            phone: None,
            last_name: last.map(Into::into),
            first_name: first.map(Into::into),
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

    // R10: Name is LastName + FirstName, family name first.
    #[test]
    fn r10_name_is_last_name_then_first_name() {
        assert_eq!(
            record(Some("電話"), Some("太郎")).full_name().as_deref(),
            Some("電話 太郎")
        );
        assert_eq!(
            record(Some("電話"), None).full_name().as_deref(),
            Some("電話")
        );
        assert_eq!(record(Some(" "), Some("")).full_name(), None);
    }
}
