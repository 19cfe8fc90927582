//! Pure conversions between domain types and Salesforce wire shapes: SOQL/SOSL text, record
//! JSON → [`SfRecord`], write payloads, save results, OAuth/identity responses, the
//! `Sforce-Limit-Info` header. No IO here; every function is unit-tested from recorded-shape
//! fixtures in `tests/fixtures/`.
//!
//! This is the only place Salesforce field names appear (besides the queries' `FROM` objects).

use crate::errors::{ApiErrorDto, map_api_error};
use crate::escape::{soql_literal, sosl_term};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use domain::ports::{DeletedRecord, FieldChange, NewRecord, RecordQuery, TaskDraft, TaskPatch};
use domain::{
    Direction, PhoneNumber, SalesforceId, SalesforceRecordRef, SfError, SfObject, SfRecord, SfUser,
    SyncTargets,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

// ----------------------------------------------------------------------------------------------
// Field sets (R10)
// ----------------------------------------------------------------------------------------------

/// The Lead fields callsync reads (R10).
pub(crate) const LEAD_FIELDS: &[&str] = &[
    "Id",
    "Phone",
    "LastName",
    "FirstName",
    "Company",
    "Email",
    "Address",
    "Description",
    "IsConverted",
    "ConvertedContactId",
    "SystemModstamp",
    "LastModifiedDate",
];

/// The Contact fields callsync reads (R10). `Account.Name` is a relationship path.
pub(crate) const CONTACT_FIELDS: &[&str] = &[
    "Id",
    "Phone",
    "LastName",
    "FirstName",
    "Account.Name",
    "Email",
    "MailingAddress",
    "Description",
    "SystemModstamp",
    "LastModifiedDate",
];

/// The Lead fields for SOSL `RETURNING`: the address as its components, because compound
/// fields are documented for SOQL `SELECT` only.
pub(crate) const LEAD_SEARCH_FIELDS: &[&str] = &[
    "Id",
    "Phone",
    "LastName",
    "FirstName",
    "Company",
    "Email",
    "Street",
    "City",
    "State",
    "PostalCode",
    "Description",
    "IsConverted",
    "ConvertedContactId",
    "SystemModstamp",
    "LastModifiedDate",
];

/// The Contact fields for SOSL `RETURNING` (address as components).
pub(crate) const CONTACT_SEARCH_FIELDS: &[&str] = &[
    "Id",
    "Phone",
    "LastName",
    "FirstName",
    "Account.Name",
    "Email",
    "MailingStreet",
    "MailingCity",
    "MailingState",
    "MailingPostalCode",
    "Description",
    "SystemModstamp",
    "LastModifiedDate",
];

/// Fields whose absence from describe means field-level security hides them (R10 preflight),
/// with the label an admin sees in Setup. `Account.Name` is checked as Contact's `AccountId`
/// lookup (Account.Name itself cannot be hidden).
pub(crate) fn describe_checks(object: SfObject) -> &'static [(&'static str, &'static str)] {
    match object {
        SfObject::Lead => &[
            ("Phone", "Phone"),
            ("LastName", "Last Name"),
            ("FirstName", "First Name"),
            ("Company", "Company"),
            ("Email", "Email"),
            ("Address", "Address"),
            ("Description", "Description"),
            ("IsConverted", "Converted"),
            ("ConvertedContactId", "Converted Contact"),
            ("SystemModstamp", "System Modstamp"),
            ("LastModifiedDate", "Last Modified Date"),
        ],
        SfObject::Contact => &[
            ("Phone", "Phone"),
            ("LastName", "Last Name"),
            ("FirstName", "First Name"),
            ("AccountId", "Account Name"),
            ("Email", "Email"),
            ("MailingAddress", "Mailing Address"),
            ("Description", "Description"),
            ("SystemModstamp", "System Modstamp"),
            ("LastModifiedDate", "Last Modified Date"),
        ],
    }
}

pub(crate) fn fields_of(object: SfObject) -> &'static [&'static str] {
    match object {
        SfObject::Lead => LEAD_FIELDS,
        SfObject::Contact => CONTACT_FIELDS,
    }
}

/// A describe response: only the field names matter.
#[derive(Debug, Deserialize)]
pub(crate) struct DescribeDto {
    #[serde(default)]
    pub fields: Vec<DescribeFieldDto>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DescribeFieldDto {
    pub name: String,
}

/// R10 preflight: the first field callsync needs that describe does not list.
pub(crate) fn first_hidden_field(object: SfObject, describe: &DescribeDto) -> Option<SfError> {
    let present: std::collections::HashSet<&str> =
        describe.fields.iter().map(|f| f.name.as_str()).collect();
    describe_checks(object)
        .iter()
        .find(|(api, _)| !present.contains(api))
        .map(|(api, label)| SfError::OrgConfig {
            problem: domain::OrgProblem::HiddenField,
            code: "HIDDEN_FIELD".to_owned(),
            object: Some(object.as_str().to_owned()),
            field: Some((*api).to_owned()),
            cause: format!(
                "the connected user cannot see {object}.{api} ({label}); make it visible in Setup > Object Manager > {object} > Fields & Relationships > {label} > Set Field-Level Security"
            ),
        })
}

// ----------------------------------------------------------------------------------------------
// Datetimes
// ----------------------------------------------------------------------------------------------

/// A SOQL datetime literal: unquoted UTC, `2025-01-01T00:00:00Z`.
pub(crate) fn soql_datetime(dt: DateTime<Utc>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses Salesforce's `2013-05-20T20:49:32.000+0000` (offset without colon, which RFC 3339
/// parsers reject), and RFC 3339 forms for good measure.
pub(crate) fn parse_sf_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| Utc.from_utc_datetime(&n))
        })
}

// ----------------------------------------------------------------------------------------------
// Queries
// ----------------------------------------------------------------------------------------------

/// `RecordQuery` → SOQL, ordered by (`SystemModstamp`, `Id`) so runs can resume.
pub(crate) fn record_soql(q: &RecordQuery) -> String {
    let mut conds = Vec::new();
    if let Some(since) = q.since {
        conds.push(format!("SystemModstamp >= {}", soql_datetime(since)));
    }
    if let Some(after) = q.modified_after {
        conds.push(format!("LastModifiedDate >= {}", soql_datetime(after)));
    }
    if q.only_with_phone {
        conds.push("Phone != null".to_owned());
    }
    if q.exclude_converted && q.object == SfObject::Lead {
        conds.push("IsConverted = false".to_owned());
    }
    let mut soql = format!(
        "SELECT {} FROM {}",
        fields_of(q.object).join(", "),
        q.object.as_str()
    );
    if !conds.is_empty() {
        soql.push_str(" WHERE ");
        soql.push_str(&conds.join(" AND "));
    }
    soql.push_str(" ORDER BY SystemModstamp, Id");
    soql
}

/// Records by id (one object type).
pub(crate) fn records_by_id_soql(object: SfObject, ids: &[&SalesforceId]) -> String {
    let list: Vec<String> = ids.iter().map(|i| soql_literal(i.as_str())).collect();
    format!(
        "SELECT {} FROM {} WHERE Id IN ({})",
        fields_of(object).join(", "),
        object.as_str(),
        list.join(", ")
    )
}

/// Deleted and merged-away records (`queryAll`): works past the 15-day `/deleted` window, and
/// `MasterRecordId` says which record won a merge.
pub(crate) fn deleted_soql(object: SfObject, since: DateTime<Utc>, until: DateTime<Utc>) -> String {
    format!(
        "SELECT Id, MasterRecordId, SystemModstamp FROM {} WHERE IsDeleted = true AND SystemModstamp >= {} AND SystemModstamp <= {} ORDER BY SystemModstamp, Id",
        object.as_str(),
        soql_datetime(since),
        soql_datetime(until)
    )
}

pub(crate) const ACTIVE_USERS_SOQL: &str =
    "SELECT Id, Email, Name, IsActive FROM User WHERE IsActive = true ORDER BY Id";

pub(crate) fn user_by_id_soql(id: &SalesforceId) -> String {
    format!(
        "SELECT Id, Email, Name FROM User WHERE Id = {}",
        soql_literal(id.as_str())
    )
}

pub(crate) fn account_by_name_soql(name: &str) -> String {
    format!(
        "SELECT Id FROM Account WHERE Name = {} ORDER BY CreatedDate, Id LIMIT 1",
        soql_literal(name)
    )
}

pub(crate) fn task_by_call_object_soql(call_object: &str) -> String {
    format!(
        "SELECT Id FROM Task WHERE CallObject = {} ORDER BY CreatedDate, Id LIMIT 1",
        soql_literal(call_object)
    )
}

/// Tasks with any of these CallObjects (R25 retries), oldest first so the first one wins.
pub(crate) fn tasks_by_call_objects_soql(call_objects: &[String]) -> String {
    let list: Vec<String> = call_objects.iter().map(|c| soql_literal(c)).collect();
    format!(
        "SELECT Id, CallObject FROM Task WHERE CallObject IN ({}) ORDER BY CreatedDate, Id",
        list.join(", ")
    )
}

/// SOSL over phone fields of the objects in `targets`, converted Leads excluded (R21).
/// `None` when `targets` is empty.
pub(crate) fn phone_sosl(digits: &str, targets: SyncTargets) -> Option<String> {
    let mut returning = Vec::new();
    if targets.lead {
        returning.push(format!(
            "Lead({} WHERE IsConverted = false)",
            LEAD_SEARCH_FIELDS.join(", ")
        ));
    }
    if targets.contact {
        returning.push(format!("Contact({})", CONTACT_SEARCH_FIELDS.join(", ")));
    }
    if returning.is_empty() {
        return None;
    }
    Some(format!(
        "FIND {{{}}} IN PHONE FIELDS RETURNING {}",
        sosl_term(digits),
        returning.join(", ")
    ))
}

/// The search terms for a number, in the order to try: national digits (`0312345678`), then
/// E.164 digits without `+` (`81312345678`) when they differ.
pub(crate) fn phone_search_terms(n: &PhoneNumber) -> Vec<String> {
    let national = n.national_digits();
    let intl = n.e164().trim_start_matches('+').to_owned();
    if national == intl {
        vec![national]
    } else {
        vec![national, intl]
    }
}

// ----------------------------------------------------------------------------------------------
// Reading responses
// ----------------------------------------------------------------------------------------------

/// One page of a query. `R` is the record type: JSON values by default, or a typed DTO so a
/// large page is read straight into its records without an intermediate tree.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueryPageDto<R = Value> {
    #[serde(default)]
    pub total_size: u64,
    #[serde(default)]
    pub done: bool,
    #[serde(default)]
    pub next_records_url: Option<String>,
    #[serde(default = "Vec::new")]
    pub records: Vec<R>,
}

/// `/search` answers `{"searchRecords":[…]}` since v36, a bare array before.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum SearchDto {
    Wrapped {
        #[serde(rename = "searchRecords", default)]
        search_records: Vec<Value>,
    },
    Bare(Vec<Value>),
}

impl SearchDto {
    pub(crate) fn into_records(self) -> Vec<Value> {
        match self {
            Self::Wrapped { search_records } => search_records,
            Self::Bare(v) => v,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddressDto {
    street: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LeadDto {
    id: String,
    phone: Option<String>,
    last_name: Option<String>,
    first_name: Option<String>,
    company: Option<String>,
    email: Option<String>,
    address: Option<AddressDto>,
    // Components, as SOSL returns them.
    street: Option<String>,
    city: Option<String>,
    state: Option<String>,
    postal_code: Option<String>,
    description: Option<String>,
    is_converted: Option<bool>,
    converted_contact_id: Option<String>,
    system_modstamp: String,
    last_modified_date: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AccountRefDto {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContactDto {
    id: String,
    phone: Option<String>,
    last_name: Option<String>,
    first_name: Option<String>,
    account: Option<AccountRefDto>,
    email: Option<String>,
    mailing_address: Option<AddressDto>,
    mailing_street: Option<String>,
    mailing_city: Option<String>,
    mailing_state: Option<String>,
    mailing_postal_code: Option<String>,
    description: Option<String>,
    system_modstamp: String,
    last_modified_date: String,
}

/// The compound address as one display string in Japanese order: postal code, state
/// (prefecture), city, street. Empty components are skipped; `None` when all are empty.
fn flatten_address(a: Option<AddressDto>) -> Option<String> {
    let a = a?;
    let parts: Vec<String> = [a.postal_code, a.state, a.city, a.street]
        .into_iter()
        .flatten()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.trim().is_empty())
}

pub(crate) fn bad_response(cause: impl Into<String>) -> SfError {
    SfError::Transient {
        code: "BAD_RESPONSE".to_owned(),
        cause: cause.into(),
    }
}

fn parse_id(s: &str, what: &str) -> Result<SalesforceId, SfError> {
    SalesforceId::parse(s)
        .map_err(|_| bad_response(format!("Salesforce sent an invalid {what} id")))
}

fn parse_dt(s: &str, field: &str) -> Result<DateTime<Utc>, SfError> {
    parse_sf_datetime(s)
        .ok_or_else(|| bad_response(format!("Salesforce sent an unreadable {field}")))
}

/// The sObject type of a record from its `attributes.type`.
pub(crate) fn record_type(v: &Value) -> Option<&str> {
    v.get("attributes")?.get("type")?.as_str()
}

/// One Lead or Contact record JSON → [`SfRecord`]. `object` is the queried type; for mixed
/// results (SOSL) pass `None` and the record's `attributes.type` decides.
pub(crate) fn record_from_json(object: Option<SfObject>, v: Value) -> Result<SfRecord, SfError> {
    let object = match object {
        Some(o) => o,
        None => record_type(&v)
            .and_then(SfObject::parse)
            .ok_or_else(|| bad_response("a search result had an unexpected type"))?,
    };
    let bad = |e: serde_json::Error| bad_response(format!("unreadable {object} record: {e}"));
    match object {
        SfObject::Lead => lead_record(serde_json::from_value(v).map_err(bad)?),
        SfObject::Contact => contact_record(serde_json::from_value(v).map_err(bad)?),
    }
}

/// A query page of `object` records, read straight from the response body into records.
pub(crate) fn record_page(
    object: SfObject,
    body: &[u8],
) -> Result<QueryPageDto<SfRecord>, SfError> {
    fn typed<D: serde::de::DeserializeOwned>(
        object: SfObject,
        body: &[u8],
        convert: fn(D) -> Result<SfRecord, SfError>,
    ) -> Result<QueryPageDto<SfRecord>, SfError> {
        let page: QueryPageDto<D> = serde_json::from_slice(body)
            .map_err(|e| bad_response(format!("unreadable {object} page: {e}")))?;
        Ok(QueryPageDto {
            total_size: page.total_size,
            done: page.done,
            next_records_url: page.next_records_url,
            records: page
                .records
                .into_iter()
                .map(convert)
                .collect::<Result<_, _>>()?,
        })
    }
    match object {
        SfObject::Lead => typed(object, body, lead_record),
        SfObject::Contact => typed(object, body, contact_record),
    }
}

fn lead_record(d: LeadDto) -> Result<SfRecord, SfError> {
    Ok(SfRecord {
        record: SalesforceRecordRef {
            object: SfObject::Lead,
            id: parse_id(&d.id, "Lead")?,
        },
        phone: non_empty(d.phone),
        last_name: non_empty(d.last_name),
        first_name: non_empty(d.first_name),
        company: non_empty(d.company),
        email: non_empty(d.email),
        address: flatten_address(d.address.or(Some(AddressDto {
            street: d.street,
            city: d.city,
            state: d.state,
            postal_code: d.postal_code,
        }))),
        description: non_empty(d.description),
        is_converted: d.is_converted.unwrap_or(false),
        converted_contact_id: d
            .converted_contact_id
            .as_deref()
            .map(|s| parse_id(s, "ConvertedContactId"))
            .transpose()?,
        system_modstamp: parse_dt(&d.system_modstamp, "SystemModstamp")?,
        last_modified: parse_dt(&d.last_modified_date, "LastModifiedDate")?,
    })
}

fn contact_record(d: ContactDto) -> Result<SfRecord, SfError> {
    Ok(SfRecord {
        record: SalesforceRecordRef {
            object: SfObject::Contact,
            id: parse_id(&d.id, "Contact")?,
        },
        phone: non_empty(d.phone),
        last_name: non_empty(d.last_name),
        first_name: non_empty(d.first_name),
        company: non_empty(d.account.and_then(|a| a.name)),
        email: non_empty(d.email),
        address: flatten_address(d.mailing_address.or(Some(AddressDto {
            street: d.mailing_street,
            city: d.mailing_city,
            state: d.mailing_state,
            postal_code: d.mailing_postal_code,
        }))),
        description: non_empty(d.description),
        is_converted: false,
        converted_contact_id: None,
        system_modstamp: parse_dt(&d.system_modstamp, "SystemModstamp")?,
        last_modified: parse_dt(&d.last_modified_date, "LastModifiedDate")?,
    })
}

/// Keeps only search hits whose Phone is `number` in normalized form (R21), and never a
/// converted Lead.
pub(crate) fn confirm_phone_hits(hits: Vec<SfRecord>, number: &PhoneNumber) -> Vec<SfRecord> {
    hits.into_iter()
        .filter(|r| !r.is_converted)
        .filter(|r| {
            r.phone
                .as_deref()
                .and_then(|p| PhoneNumber::parse(p).ok())
                .is_some_and(|p| &p == number)
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UserDto {
    id: String,
    email: Option<String>,
    name: Option<String>,
    is_active: Option<bool>,
}

pub(crate) fn user_from_json(v: Value) -> Result<SfUser, SfError> {
    let d: UserDto =
        serde_json::from_value(v).map_err(|e| bad_response(format!("unreadable User: {e}")))?;
    Ok(SfUser {
        id: parse_id(&d.id, "User")?,
        email: d
            .email
            .as_deref()
            .and_then(|e| domain::EmailAddress::parse(e).ok()),
        name: d.name.unwrap_or_default(),
        active: d.is_active.unwrap_or(true),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeletedDto {
    id: String,
    master_record_id: Option<String>,
}

pub(crate) fn deleted_from_json(object: SfObject, v: Value) -> Result<DeletedRecord, SfError> {
    let d: DeletedDto = serde_json::from_value(v)
        .map_err(|e| bad_response(format!("unreadable deleted record: {e}")))?;
    Ok(DeletedRecord {
        record: SalesforceRecordRef {
            object,
            id: parse_id(&d.id, "deleted record")?,
        },
        merged_into: d
            .master_record_id
            .as_deref()
            .map(|s| parse_id(s, "MasterRecordId"))
            .transpose()?,
    })
}

/// The `Id` of the first record of a query page.
pub(crate) fn first_id(page: &QueryPageDto) -> Result<Option<SalesforceId>, SfError> {
    page.records
        .first()
        .and_then(|r| r.get("Id"))
        .and_then(Value::as_str)
        .map(|s| parse_id(s, "record"))
        .transpose()
}

// ----------------------------------------------------------------------------------------------
// Writing
// ----------------------------------------------------------------------------------------------

/// A call Task (R24).
pub(crate) fn task_json(t: &TaskDraft) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("WhoId".into(), json!(t.who.id.as_str()));
    if let Some(owner) = &t.owner {
        m.insert("OwnerId".into(), json!(owner.as_str()));
    }
    m.insert("Subject".into(), json!(t.subject));
    m.insert("Description".into(), json!(t.description));
    m.insert("TaskSubtype".into(), json!("Call"));
    m.insert("Status".into(), json!("Completed"));
    m.insert(
        "CallType".into(),
        json!(match t.call_type {
            Direction::Inbound => "Inbound",
            Direction::Outbound => "Outbound",
        }),
    );
    if let Some(d) = t.duration_secs {
        m.insert("CallDurationInSeconds".into(), json!(d));
    }
    m.insert("CallObject".into(), json!(t.call_object));
    m.insert("CallDisposition".into(), json!(t.disposition));
    m.insert(
        "ActivityDate".into(),
        json!(t.activity_date.format("%Y-%m-%d").to_string()),
    );
    m
}

/// A Task patch; empty when nothing changes.
pub(crate) fn task_patch_json(p: &TaskPatch) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(s) = &p.subject {
        m.insert("Subject".into(), json!(s));
    }
    if let Some(d) = &p.description {
        m.insert("Description".into(), json!(d));
    }
    if let Some(d) = p.duration_secs {
        m.insert("CallDurationInSeconds".into(), json!(d));
    }
    if let Some(d) = &p.disposition {
        m.insert("CallDisposition".into(), json!(d));
    }
    m
}

/// A Lead or Contact to create (R30–R32). Company only on a Lead, AccountId only on a Contact.
pub(crate) fn new_record_json(r: &NewRecord) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("LastName".into(), json!(r.last_name));
    if let Some(f) = r.first_name.as_deref().filter(|s| !s.is_empty()) {
        m.insert("FirstName".into(), json!(f));
    }
    match r.object {
        SfObject::Lead => {
            if let Some(c) = &r.company {
                m.insert("Company".into(), json!(c));
            }
        }
        SfObject::Contact => {
            if let Some(a) = &r.account_id {
                m.insert("AccountId".into(), json!(a.as_str()));
            }
        }
    }
    m.insert("Phone".into(), json!(r.phone));
    if let Some(e) = r.email.as_deref().filter(|s| !s.is_empty()) {
        m.insert("Email".into(), json!(e));
    }
    m
}

/// Write-back fields (R11) for one record; empty when nothing is sendable. Company is sent
/// for Leads only; address and a Contact's company are never written.
pub(crate) fn update_json(object: SfObject, changes: &[FieldChange]) -> Map<String, Value> {
    let mut m = Map::new();
    for c in changes {
        match c {
            FieldChange::Phone(v) => {
                m.insert("Phone".into(), json!(v));
            }
            FieldChange::Name {
                last_name,
                first_name,
            } => {
                m.insert("LastName".into(), json!(last_name));
                m.insert("FirstName".into(), json!(first_name));
            }
            FieldChange::Email(v) => {
                m.insert("Email".into(), json!(v));
            }
            FieldChange::Description(v) => {
                m.insert("Description".into(), json!(v));
            }
            FieldChange::Company(v) => {
                if object == SfObject::Lead {
                    m.insert("Company".into(), json!(v));
                }
            }
        }
    }
    m
}

/// A record for `/composite/sobjects`: the fields plus `attributes.type` (and `id` to update).
pub(crate) fn collection_record(
    kind: &str,
    id: Option<&SalesforceId>,
    fields: Map<String, Value>,
) -> Value {
    let mut m = Map::new();
    m.insert("attributes".into(), json!({ "type": kind }));
    if let Some(id) = id {
        m.insert("id".into(), json!(id.as_str()));
    }
    m.extend(fields);
    Value::Object(m)
}

#[derive(Debug, Deserialize)]
pub(crate) struct SaveResultDto {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<ApiErrorDto>,
}

/// One save result → the new id, or the mapped per-record error (`statusCode` shape).
pub(crate) fn save_result(
    r: &SaveResultDto,
    object: &str,
) -> Result<Option<SalesforceId>, SfError> {
    if r.success {
        return r.id.as_deref().map(|i| parse_id(i, object)).transpose();
    }
    let first = r.errors.first().cloned().unwrap_or_default();
    Err(map_api_error(400, &first, Some(object)))
}

// ----------------------------------------------------------------------------------------------
// Headers, OAuth and identity
// ----------------------------------------------------------------------------------------------

/// `Sforce-Limit-Info: api-usage=18/5000[; per-app-api-usage=…]` → `(18, 5000)`.
pub(crate) fn parse_limit_info(header: &str) -> Option<(u64, u64)> {
    header.split([';', ',']).find_map(|part| {
        let v = part.trim().strip_prefix("api-usage=")?;
        let (used, max) = v.split_once('/')?;
        Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
    })
}

/// The token endpoint's success body. `Debug` is hand-written: no token is ever printed.
#[derive(Deserialize)]
pub(crate) struct TokenResponseDto {
    pub access_token: secrecy::SecretString,
    #[serde(default)]
    pub refresh_token: Option<secrecy::SecretString>,
    pub instance_url: String,
    #[serde(default)]
    pub id: Option<String>,
    /// Milliseconds since the epoch, as a string.
    #[serde(default)]
    pub issued_at: Option<String>,
}

impl std::fmt::Debug for TokenResponseDto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("instance_url", &self.instance_url)
            .field("id", &self.id)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

impl TokenResponseDto {
    pub(crate) fn issued_at(&self) -> Option<DateTime<Utc>> {
        let ms: i64 = self.issued_at.as_deref()?.parse().ok()?;
        DateTime::from_timestamp_millis(ms)
    }
}

/// `https://login.salesforce.com/id/00D…/005…` → (org id, user id).
pub(crate) fn parse_id_url(id_url: &str) -> Option<(SalesforceId, SalesforceId)> {
    let path = id_url.split(['?', '#']).next()?.trim_end_matches('/');
    let mut segs = path.rsplit('/');
    let user = SalesforceId::parse(segs.next()?).ok()?;
    let org = SalesforceId::parse(segs.next()?).ok()?;
    Some((org, user))
}

#[derive(Debug, Deserialize)]
pub(crate) struct IdentityDto {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

/// Identity response (+ the `id` URL as fallback for the ids) → the connecting user.
pub(crate) fn connected_user(
    identity: &IdentityDto,
    id_url: &str,
) -> Result<domain::ConnectedUser, SfError> {
    let from_url = parse_id_url(id_url);
    let user_id = identity
        .user_id
        .as_deref()
        .and_then(|s| SalesforceId::parse(s).ok())
        .or_else(|| from_url.as_ref().map(|p| p.1.clone()))
        .ok_or_else(|| bad_response("the identity response has no user id"))?;
    let org_id = identity
        .organization_id
        .as_deref()
        .and_then(|s| SalesforceId::parse(s).ok())
        .or_else(|| from_url.as_ref().map(|p| p.0.clone()))
        .ok_or_else(|| bad_response("the identity response has no organization id"))?;
    Ok(domain::ConnectedUser {
        user_id,
        org_id,
        email: identity
            .email
            .as_deref()
            .and_then(|e| domain::EmailAddress::parse(e).ok()),
        name: identity
            .display_name
            .clone()
            .or_else(|| identity.username.clone())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
#[path = "transformers_tests.rs"]
mod tests;
