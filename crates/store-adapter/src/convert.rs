//! Rows → domain types. Values that do not parse are `StoreError::Corrupt`, naming the column.

use crate::entity::{call_task, customer, member, sf_user};
use crate::error::{corrupt, json_err};
use domain::ports::CallTask;
use domain::{
    CallId, Customer, CustomerFields, CustomerId, EmailAddress, Member, PhoneNumber, SalesforceId,
    SalesforceRecordRef, SfLink, SfObject, SfUser, StoreError, SyncedField, TenantId,
};

pub(crate) fn tenant_id(s: &str) -> Result<TenantId, StoreError> {
    TenantId::parse(s).map_err(|e| corrupt("tenant_id", e))
}

pub(crate) fn sf_id(col: &str, s: &str) -> Result<SalesforceId, StoreError> {
    SalesforceId::parse(s).map_err(|e| corrupt(col, e))
}

pub(crate) fn object(col: &str, s: &str) -> Result<SfObject, StoreError> {
    SfObject::parse(s).ok_or_else(|| corrupt(col, format!("unknown object {s:?}")))
}

pub(crate) fn record_ref(
    object_col: &str,
    o: &str,
    id: &str,
) -> Result<SalesforceRecordRef, StoreError> {
    Ok(SalesforceRecordRef {
        object: object(object_col, o)?,
        id: sf_id(object_col, id)?,
    })
}

pub(crate) fn call_id(s: &str) -> Result<CallId, StoreError> {
    CallId::parse(s).map_err(|e| corrupt("call_id", e))
}

/// An email as stored: kept only when it parses (it was validated when written).
pub(crate) fn email(s: Option<&str>) -> Option<EmailAddress> {
    s.and_then(|s| EmailAddress::parse(s).ok())
}

pub(crate) fn dirty_json(d: &[SyncedField]) -> String {
    let mut d = d.to_vec();
    d.sort();
    d.dedup();
    serde_json::to_string(&d).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn customer(m: customer::Model) -> Result<Customer, StoreError> {
    let link = match (m.record_object.as_deref(), m.record_id.as_deref()) {
        (Some(o), Some(id)) => Some(SfLink {
            record: record_ref("customers.record_object", o, id)?,
            system_modstamp: m.system_modstamp,
        }),
        _ => None,
    };
    let dirty: Vec<SyncedField> =
        serde_json::from_str(&m.dirty).map_err(|e| json_err("customers.dirty", e))?;
    Ok(Customer {
        id: CustomerId(m.id),
        number: PhoneNumber::from_trusted(m.e164, m.raw_number),
        fields: CustomerFields {
            name: m.name,
            company: m.company,
            email: m.email,
            address: m.address,
            memo: m.memo,
        },
        link,
        dirty,
        edited_at: m.edited_at,
    })
}

pub(crate) fn member(m: member::Model) -> Member {
    Member {
        external_id: m.external_id,
        name: m.name,
        email: email(m.email.as_deref()),
    }
}

pub(crate) fn sf_user(m: sf_user::Model) -> Result<SfUser, StoreError> {
    Ok(SfUser {
        id: sf_id("sf_users.user_id", &m.user_id)?,
        email: email(m.email.as_deref()),
        name: m.name,
        active: m.active,
    })
}

pub(crate) fn call_task(m: call_task::Model) -> Result<CallTask, StoreError> {
    let continuation_task_ids: Vec<SalesforceId> = serde_json::from_str(&m.continuations)
        .map_err(|e| json_err("call_tasks.continuations", e))?;
    Ok(CallTask {
        call_id: call_id(&m.call_id)?,
        task_id: sf_id("call_tasks.task_id", &m.task_id)?,
        who: record_ref("call_tasks.who_object", &m.who_object, &m.who_id)?,
        owner: m
            .owner_id
            .as_deref()
            .map(|s| sf_id("call_tasks.owner_id", s))
            .transpose()?,
        description: m.description,
        continuation_task_ids,
    })
}

/// Trimmed, with empty text as `None` (webhook fields arrive as empty strings).
pub(crate) fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
