//! One org's records: compact storage, write rules (required fields, lengths, converted leads,
//! duplicate and validation rules), rendering to JSON, and an undo log for all-or-none work.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::ids::SfId;
use crate::phone;
use crate::schema::{ALL_OBJS, FType, FieldDef, Kind, Obj};
use crate::value::{DAY_MS, J, Val, parse_date, parse_dt, write_str};

/// Stands for the request's API version in bodies built below the HTTP layer (see
/// [`J::replace_version`]).
pub(crate) const VERSION_PLACEHOLDER: &str = "{version}";

/// A compound address's JSON keys, in the order Salesforce sends them, and the suffixes of the
/// component fields they come from (`MailingAddress.city` is `MailingCity`).
const ADDRESS_KEYS: [(&str, &str); 8] = [
    ("city", "City"),
    ("country", "Country"),
    ("geocodeAccuracy", "GeocodeAccuracy"),
    ("latitude", "Latitude"),
    ("longitude", "Longitude"),
    ("postalCode", "PostalCode"),
    ("state", "State"),
    ("street", "Street"),
];

/// The component field indices of the address field `idx` of `o` (by [`ADDRESS_KEYS`]), looked
/// up by name once per object and kept: they were looked up for every record served.
fn address_parts(o: Obj, idx: u16) -> [Option<u16>; 8] {
    static PARTS: OnceLock<Vec<Vec<[Option<u16>; 8]>>> = OnceLock::new();
    let table = PARTS.get_or_init(|| {
        let mut t = vec![Vec::new(); ALL_OBJS.len()];
        for o in ALL_OBJS {
            t[o.index()] =
                o.fields()
                    .iter()
                    .map(|fd| match fd.kind {
                        Kind::Address(prefix) => ADDRESS_KEYS
                            .map(|(_, suffix)| o.field_idx(&format!("{prefix}{suffix}"))),
                        _ => [None; 8],
                    })
                    .collect();
        }
        t
    });
    table
        .get(o.index())
        .and_then(|t| t.get(idx as usize))
        .copied()
        .unwrap_or([None; 8])
}

/// One stored record. System dates live in the struct; everything else is a sparse field list.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) id: SfId,
    pub(crate) created: i64,
    pub(crate) modified: i64,
    pub(crate) modstamp: i64,
    pub(crate) deleted_at: Option<i64>,
    /// Rolled back creates: invisible everywhere, kept so indices stay stable.
    pub(crate) purged: bool,
    pub(crate) fields: Vec<(u16, Val)>,
}

impl Record {
    pub(crate) fn get(&self, idx: u16) -> &Val {
        self.fields
            .iter()
            .find(|(i, _)| *i == idx)
            .map_or(&Val::Null, |(_, v)| v)
    }

    pub(crate) fn set(&mut self, idx: u16, v: Val) {
        match self.fields.iter_mut().find(|(i, _)| *i == idx) {
            Some(slot) => {
                if v.is_null() {
                    self.fields.retain(|(i, _)| *i != idx);
                } else {
                    slot.1 = v;
                }
            }
            None if !v.is_null() => self.fields.push((idx, v)),
            None => {}
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        !self.purged && self.deleted_at.is_none()
    }
}

#[derive(Default)]
pub(crate) struct Table {
    pub(crate) recs: Vec<Record>,
    pub(crate) by_id: HashMap<SfId, u32>,
    pub(crate) counter: u64,
}

/// An API error: rendered as `[{"message","errorCode","fields"}]` or, per record, with `statusCode`.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) fields: Option<Vec<String>>,
    /// `duplicateResut` body of DUPLICATES_DETECTED.
    pub(crate) duplicate: Option<J>,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            fields: None,
            duplicate: None,
        }
    }
    pub(crate) fn rec(code: &str, message: impl Into<String>, fields: &[&str]) -> Self {
        ApiError {
            status: 400,
            code: code.to_string(),
            message: message.into(),
            fields: Some(fields.iter().map(|s| s.to_string()).collect()),
            duplicate: None,
        }
    }
    pub(crate) fn not_found() -> Self {
        ApiError::new(404, "NOT_FOUND", "The requested resource does not exist")
    }
    /// The REST error element: `{"message","errorCode","fields"?}`.
    pub(crate) fn to_j(&self) -> J {
        let mut o = J::obj();
        if let Some(d) = &self.duplicate {
            o.push("duplicateResut", d.clone());
            o.push("errorCode", J::s(&self.code));
            o.push("message", J::s(&self.message));
            return o;
        }
        o.push("message", J::s(&self.message));
        o.push("errorCode", J::s(&self.code));
        if let Some(f) = &self.fields {
            o.push("fields", J::Arr(f.iter().map(J::s).collect()));
        }
        o
    }
    /// The per-record error element of sObject Collections: `{"statusCode","message","fields"}`.
    pub(crate) fn to_record_j(&self) -> J {
        J::obj()
            .with("statusCode", J::s(&self.code))
            .with("message", J::s(&self.message))
            .with(
                "fields",
                J::Arr(self.fields.iter().flatten().map(J::s).collect()),
            )
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum ClockMode {
    Real { offset_ms: i64 },
    Frozen(i64),
}

#[derive(Default, Clone, Debug)]
pub(crate) struct Faults {
    pub(crate) ip_restricted: bool,
    pub(crate) api_disabled: bool,
    pub(crate) limit_exceeded: bool,
    pub(crate) refresh_revoked: bool,
    pub(crate) lock_row: u32,
    pub(crate) server_error: u32,
    pub(crate) latency: Duration,
    pub(crate) hidden: Vec<(Obj, u16)>,
    pub(crate) validation: Vec<(Obj, String)>,
    pub(crate) duplicate: Vec<Obj>,
    pub(crate) search_lag_ms: i64,
}

enum Undo {
    Created(Obj, u32),
    Prev(Obj, u32, Box<Record>),
    DeleteLog(usize),
}

/// Who writes and how strictly.
#[derive(Clone, Copy)]
pub(crate) struct WriteCtx {
    pub(crate) user: SfId,
    /// Test seeding: read-only and audit fields may be set, required fields are not enforced.
    pub(crate) seeding: bool,
    pub(crate) allow_duplicates: bool,
}

pub(crate) struct OrgData {
    pub(crate) pod: u32,
    pub(crate) tables: [Table; 5],
    pub(crate) delete_log: Vec<(Obj, SfId, i64)>,
    undo: Option<Vec<Undo>>,
    pub(crate) clock: ClockMode,
    pub(crate) locale_ja: bool,
    pub(crate) faults: Faults,
    pub(crate) task_bumps_who: bool,
    /// Records created at or before this instant are searchable regardless of search lag.
    pub(crate) indexed_through: i64,
}

fn now_real_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl OrgData {
    pub(crate) fn new(pod: u32) -> Self {
        OrgData {
            pod,
            tables: Default::default(),
            delete_log: Vec::new(),
            undo: None,
            clock: ClockMode::Real { offset_ms: 0 },
            locale_ja: true,
            faults: Faults::default(),
            task_bumps_who: true,
            indexed_through: i64::MIN,
        }
    }

    pub(crate) fn now(&self) -> i64 {
        match self.clock {
            ClockMode::Real { offset_ms } => now_real_ms() + offset_ms,
            ClockMode::Frozen(t) => t,
        }
    }

    pub(crate) fn table(&self, o: Obj) -> &Table {
        &self.tables[o.index()]
    }

    pub(crate) fn new_id(&mut self, o: Obj) -> SfId {
        let pod = self.pod;
        let t = &mut self.tables[o.index()];
        t.counter += 1;
        SfId::make(o.prefix(), pod, t.counter)
    }

    pub(crate) fn find(&self, o: Obj, id: SfId) -> Option<(u32, &Record)> {
        let t = self.table(o);
        let i = *t.by_id.get(&id)?;
        let r = &t.recs[i as usize];
        (!r.purged).then_some((i, r))
    }

    /// A live (not deleted) record of any type by id.
    pub(crate) fn lookup(&self, id: SfId) -> Option<(Obj, &Record)> {
        let o = Obj::from_prefix(id.prefix())?;
        let (_, r) = self.find(o, id)?;
        r.is_live().then_some((o, r))
    }

    fn rec_mut(&mut self, o: Obj, idx: u32) -> &mut Record {
        if let Some(u) = &mut self.undo {
            let prev = self.tables[o.index()].recs[idx as usize].clone();
            u.push(Undo::Prev(o, idx, Box::new(prev)));
        }
        &mut self.tables[o.index()].recs[idx as usize]
    }

    /// Append a record (no checks). Used by seeding and by `create`.
    pub(crate) fn push_record(&mut self, o: Obj, mut rec: Record) -> u32 {
        rec.fields.shrink_to_fit();
        let t = &mut self.tables[o.index()];
        let idx = t.recs.len() as u32;
        t.by_id.insert(rec.id, idx);
        t.recs.push(rec);
        if let Some(u) = &mut self.undo {
            u.push(Undo::Created(o, idx));
        }
        idx
    }

    pub(crate) fn begin(&mut self) {
        self.undo = Some(Vec::new());
    }

    pub(crate) fn commit(&mut self) {
        self.undo = None;
    }

    pub(crate) fn rollback(&mut self) {
        let Some(log) = self.undo.take() else { return };
        for u in log.into_iter().rev() {
            match u {
                Undo::Created(o, i) => {
                    let t = &mut self.tables[o.index()];
                    let r = &mut t.recs[i as usize];
                    r.purged = true;
                    let id = r.id;
                    t.by_id.remove(&id);
                }
                Undo::Prev(o, i, r) => self.tables[o.index()].recs[i as usize] = *r,
                Undo::DeleteLog(n) => self.delete_log.truncate(n),
            }
        }
    }

    pub(crate) fn is_hidden(&self, o: Obj, idx: u16) -> bool {
        self.faults
            .hidden
            .iter()
            .any(|&(ho, hi)| ho == o && hi == idx)
    }

    /// A field's value as Salesforce would report it (computed fields included; address → Null).
    pub(crate) fn value(&self, o: Obj, rec: &Record, idx: u16) -> Val {
        let Some(fd) = o.fields().get(idx as usize) else {
            return Val::Null;
        };
        match fd.kind {
            Kind::Stored => {
                let v = rec.get(idx);
                if v.is_null() && fd.ty == FType::Boolean {
                    Val::Bool(false)
                } else {
                    v.clone()
                }
            }
            Kind::Id => Val::Id(rec.id),
            Kind::IsDeleted => Val::Bool(rec.deleted_at.is_some()),
            Kind::CreatedDate => Val::Dt(rec.created),
            Kind::LastModifiedDate => Val::Dt(rec.modified),
            Kind::SystemModstamp => Val::Dt(rec.modstamp),
            Kind::Name => {
                let first = o
                    .field_idx("FirstName")
                    .map(|i| rec.get(i).as_text().map(|s| s.to_string()));
                let last = o
                    .field_idx("LastName")
                    .map(|i| rec.get(i).as_text().map(|s| s.to_string()));
                let (first, last) = (
                    first.flatten().unwrap_or_default(),
                    last.flatten().unwrap_or_default(),
                );
                let name = match (first.is_empty(), last.is_empty()) {
                    (true, _) => last,
                    (false, true) => first,
                    (false, false) if self.locale_ja => format!("{last} {first}"),
                    (false, false) => format!("{first} {last}"),
                };
                Val::str(&name)
            }
            Kind::Address(_) => Val::Null,
            Kind::TaskIsClosed => {
                let st = o
                    .field_idx("Status")
                    .map(|i| rec.get(i).clone())
                    .unwrap_or(Val::Null);
                Val::Bool(matches!(st, Val::Str(s) if &*s == "Completed"))
            }
            Kind::TaskAccountId => {
                let what = o.field_idx("WhatId").map(|i| rec.get(i).clone());
                if let Some(Val::Id(w)) = what
                    && w.prefix() == "001"
                {
                    return Val::Id(w);
                }
                if let Some(Val::Id(who)) = o.field_idx("WhoId").map(|i| rec.get(i).clone())
                    && let Some((Obj::Contact, c)) = self.lookup(who)
                    && let Some(ai) = Obj::Contact.field_idx("AccountId")
                {
                    return c.get(ai).clone();
                }
                Val::Null
            }
        }
    }

    /// A field as JSON (compound address objects included): [`Self::write_field`]'s text.
    pub(crate) fn field_j(&self, o: Obj, rec: &Record, idx: u16) -> J {
        let mut out = String::new();
        self.write_field(o, rec, idx, &mut out);
        J::Raw(out)
    }

    /// Writes a field's JSON (compound address objects included) straight from the stored
    /// record, without cloning its values.
    pub(crate) fn write_field(&self, o: Obj, rec: &Record, idx: u16, out: &mut String) {
        let Some(fd) = o.fields().get(idx as usize) else {
            out.push_str("null");
            return;
        };
        match fd.kind {
            Kind::Address(_) => {
                let parts = address_parts(o, idx);
                let val = |i: Option<u16>| i.map_or(&Val::Null, |i| rec.get(i));
                if parts.iter().all(|&i| val(i).is_null()) {
                    out.push_str("null");
                    return;
                }
                out.push('{');
                for (n, ((key, _), i)) in ADDRESS_KEYS.iter().zip(parts).enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    write_str(key, out);
                    out.push(':');
                    val(i).write_json(out);
                }
                out.push('}');
            }
            // What `value` returns for these, borrowed instead of cloned.
            Kind::Stored if fd.ty != FType::Boolean || !rec.get(idx).is_null() => {
                rec.get(idx).write_json(out)
            }
            _ => self.value(o, rec, idx).write_json(out),
        }
    }

    pub(crate) fn attributes(o: Obj, id: SfId, version: &str) -> J {
        J::obj().with("type", J::s(o.name())).with(
            "url",
            J::s(format!(
                "/services/data/v{version}/sobjects/{}/{id}",
                o.name()
            )),
        )
    }

    /// The full record as `GET /sobjects/{Type}/{Id}` returns it (hidden fields omitted).
    pub(crate) fn record_j(&self, o: Obj, rec: &Record, version: &str, only: Option<&[u16]>) -> J {
        let mut out = J::obj().with("attributes", Self::attributes(o, rec.id, version));
        for (i, fd) in o.fields().iter().enumerate() {
            let i = i as u16;
            if self.is_hidden(o, i) || only.is_some_and(|s| !s.contains(&i)) {
                continue;
            }
            out.push(fd.name, self.field_j(o, rec, i));
        }
        out
    }

    // ----- writes -------------------------------------------------------------------------------

    fn coerce(&self, o: Obj, fd: &FieldDef, v: &Value) -> Result<Val, ApiError> {
        let parse_err = |what: &str| {
            let kind = match v {
                Value::Number(n) if n.is_i64() => "VALUE_NUMBER_INT",
                Value::Number(_) => "VALUE_NUMBER_FLOAT",
                Value::Bool(true) => "VALUE_TRUE",
                Value::Bool(false) => "VALUE_FALSE",
                Value::Array(_) => "START_ARRAY",
                Value::Object(_) => "START_OBJECT",
                _ => "VALUE_STRING",
            };
            ApiError::rec(
                "JSON_PARSER_ERROR",
                format!(
                    "Cannot deserialize instance of {what} from {kind} value {v} or request may be missing a required field at [line:1, column:1]"
                ),
                &[],
            )
        };
        if v.is_null() {
            return Ok(Val::Null);
        }
        let val = match fd.ty {
            t if t.is_text() => match v {
                Value::String(s) => Val::str(s),
                _ => return Err(parse_err("string")),
            },
            FType::Boolean => match v {
                Value::Bool(b) => Val::Bool(*b),
                Value::String(s) if s.eq_ignore_ascii_case("true") => Val::Bool(true),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Val::Bool(false),
                _ => return Err(parse_err("boolean")),
            },
            FType::Int => match v {
                Value::Number(n) => Val::Int(
                    n.as_i64()
                        .or_else(|| n.as_f64().map(|f| f as i64))
                        .unwrap_or(0),
                ),
                Value::String(s) => Val::Int(s.trim().parse().map_err(|_| parse_err("int"))?),
                _ => return Err(parse_err("int")),
            },
            FType::Double => match v {
                Value::Number(n) => Val::Num(n.as_f64().unwrap_or(0.0)),
                Value::String(s) => Val::Num(s.trim().parse().map_err(|_| parse_err("double"))?),
                _ => return Err(parse_err("double")),
            },
            FType::DateTime => match v {
                Value::String(s) => Val::Dt(parse_dt(s).ok_or_else(|| parse_err("datetime"))?),
                _ => return Err(parse_err("datetime")),
            },
            FType::Date => match v {
                Value::String(s) => Val::Date(
                    parse_date(s.get(..10).unwrap_or(s)).ok_or_else(|| parse_err("date"))?,
                ),
                _ => return Err(parse_err("date")),
            },
            FType::Reference | FType::Id => {
                let Value::String(s) = v else {
                    return Err(parse_err("id"));
                };
                if s.is_empty() {
                    return Ok(Val::Null);
                }
                let bad_type = || {
                    ApiError::rec(
                        "MALFORMED_ID",
                        format!("{}: id value of incorrect type: {s}", fd.label),
                        &[fd.name],
                    )
                };
                let id = SfId::parse(s).ok_or_else(bad_type)?;
                let target = Obj::from_prefix(id.prefix());
                if !target.is_some_and(|t| fd.refs.contains(&t.name())) {
                    return Err(ApiError::rec(
                        "FIELD_INTEGRITY_EXCEPTION",
                        format!("{}: id value of incorrect type: {s}", fd.label),
                        &[fd.name],
                    ));
                }
                match self.lookup(id) {
                    None => {
                        return Err(ApiError::rec(
                            "INVALID_CROSS_REFERENCE_KEY",
                            "invalid cross reference id".to_string(),
                            &[fd.name],
                        ));
                    }
                    Some((Obj::Lead, r)) if o == Obj::Task && self.lead_converted(r) => {
                        return Err(ApiError::rec(
                            "CANNOT_UPDATE_CONVERTED_LEAD",
                            "cannot reference converted lead",
                            &[fd.name],
                        ));
                    }
                    Some(_) => Val::Id(id),
                }
            }
            FType::Address => return Err(parse_err("address")),
            _ => return Err(parse_err("string")),
        };
        if fd.ty.is_text()
            && fd.len > 0
            && let Val::Str(s) = &val
            && s.chars().count() > fd.len as usize
        {
            let shown: String = s.chars().take(255).collect();
            return Err(ApiError::rec(
                "STRING_TOO_LONG",
                format!(
                    "{}: data value too large: {shown} (max length={})",
                    fd.label, fd.len
                ),
                &[fd.name],
            ));
        }
        Ok(val)
    }

    pub(crate) fn lead_converted(&self, r: &Record) -> bool {
        Obj::Lead
            .field_idx("IsConverted")
            .is_some_and(|i| matches!(r.get(i), Val::Bool(true)))
    }

    /// Validate the JSON body of a create/update into (field index, value) pairs.
    fn collect(
        &self,
        o: Obj,
        input: &Map<String, Value>,
        creating: bool,
        ctx: WriteCtx,
    ) -> Result<Vec<(u16, Val, Option<i64>)>, ApiError> {
        let mut out = Vec::new();
        let mut not_writable = Vec::new();
        for (k, v) in input {
            if k == "attributes" {
                continue;
            }
            if k.eq_ignore_ascii_case("Id") {
                if creating && !ctx.seeding {
                    return Err(ApiError::rec(
                        "INVALID_FIELD",
                        "The Id field should not be specified in the sobject data.",
                        &[],
                    ));
                }
                continue;
            }
            let Some((idx, fd)) = o.field(k).filter(|(i, _)| !self.is_hidden(o, *i)) else {
                return Err(ApiError::rec(
                    "INVALID_FIELD",
                    format!("No such column '{k}' on sobject of type {}", o.name()),
                    &[],
                ));
            };
            if ctx.seeding {
                match fd.kind {
                    Kind::CreatedDate | Kind::LastModifiedDate | Kind::SystemModstamp => {
                        let ms = v.as_str().and_then(parse_dt).ok_or_else(|| {
                            ApiError::rec("JSON_PARSER_ERROR", format!("bad datetime for {k}"), &[])
                        })?;
                        out.push((idx, Val::Null, Some(ms)));
                        continue;
                    }
                    Kind::Stored => {}
                    _ => continue,
                }
            } else if !(if creating { fd.create } else { fd.update }) {
                not_writable.push(fd.name);
                continue;
            }
            out.push((idx, self.coerce(o, fd, v)?, None));
        }
        if !not_writable.is_empty() {
            return Err(ApiError::rec(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    not_writable.join(", ")
                ),
                &not_writable,
            ));
        }
        Ok(out)
    }

    pub(crate) fn create(
        &mut self,
        o: Obj,
        input: &Map<String, Value>,
        ctx: WriteCtx,
    ) -> Result<SfId, ApiError> {
        let vals = self.collect(o, input, true, ctx)?;
        let now = self.now();
        let mut rec = Record {
            id: SfId::make("000", 0, 0),
            created: now,
            modified: now,
            modstamp: now,
            deleted_at: None,
            purged: false,
            fields: Vec::with_capacity(vals.len() + 4),
        };
        let mut explicit_modified = None;
        let mut explicit_modstamp = None;
        for (idx, v, dt) in vals {
            if let Some(ms) = dt {
                match o.fields()[idx as usize].kind {
                    Kind::CreatedDate => rec.created = ms,
                    Kind::LastModifiedDate => explicit_modified = Some(ms),
                    _ => explicit_modstamp = Some(ms),
                }
            } else {
                rec.set(idx, v);
            }
        }
        rec.modified = explicit_modified.unwrap_or(rec.created);
        rec.modstamp = explicit_modstamp.unwrap_or(rec.modified.max(rec.created));
        // Defaults.
        for (i, fd) in o.fields().iter().enumerate() {
            let i = i as u16;
            if fd.kind != Kind::Stored || !rec.get(i).is_null() {
                continue;
            }
            if let Some(d) = fd.default {
                rec.set(i, Val::str(d));
            } else if fd.name == "OwnerId"
                || fd.name == "CreatedById"
                || fd.name == "LastModifiedById"
            {
                rec.set(i, Val::Id(ctx.user));
            } else if (o == Obj::User && fd.name == "IsActive")
                || (o == Obj::Lead && fd.name == "IsUnreadByOwner")
            {
                rec.set(i, Val::Bool(true));
            }
        }
        if !ctx.seeding {
            let missing: Vec<&str> = o
                .fields()
                .iter()
                .enumerate()
                .filter(|(i, fd)| fd.required && rec.get(*i as u16).is_null())
                .map(|(_, fd)| fd.name)
                .collect();
            if !missing.is_empty() {
                return Err(ApiError::rec(
                    "REQUIRED_FIELD_MISSING",
                    format!("Required fields are missing: [{}]", missing.join(", ")),
                    &missing,
                ));
            }
            if let Some((_, msg)) = self.faults.validation.iter().find(|(vo, _)| *vo == o) {
                return Err(ApiError::rec(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    msg.clone(),
                    &[],
                ));
            }
            if self.faults.duplicate.contains(&o) && !ctx.allow_duplicates {
                let dups = self.find_duplicates(o, &rec);
                if !dups.is_empty() {
                    return Err(self.duplicate_error(o, &dups));
                }
            }
        }
        rec.id = self.new_id(o);
        let id = rec.id;
        let who = if o == Obj::Task {
            o.field_idx("WhoId").map(|i| rec.get(i).clone())
        } else {
            None
        };
        self.push_record(o, rec);
        if let Some(Val::Id(who)) = who {
            self.task_logged(who, now);
        }
        Ok(id)
    }

    /// Logging a Task bumps the Who's LastActivityDate and SystemModstamp (not LastModifiedDate).
    fn task_logged(&mut self, who: SfId, now: i64) {
        if !self.task_bumps_who {
            return;
        }
        let Some(o) = Obj::from_prefix(who.prefix()) else {
            return;
        };
        let Some((idx, _)) = self.find(o, who) else {
            return;
        };
        let lad = o.field_idx("LastActivityDate");
        let r = self.rec_mut(o, idx);
        r.modstamp = now;
        if let Some(l) = lad {
            r.set(l, Val::Date(now.div_euclid(DAY_MS) as i32));
        }
    }

    pub(crate) fn live_index(&self, o: Obj, id: SfId) -> Result<u32, ApiError> {
        match self.find(o, id) {
            Some((i, r)) if r.deleted_at.is_none() => Ok(i),
            Some(_) => Err(ApiError {
                fields: Some(vec![]),
                ..ApiError::new(404, "ENTITY_IS_DELETED", "entity is deleted")
            }),
            None => Err(ApiError::not_found()),
        }
    }

    pub(crate) fn update(
        &mut self,
        o: Obj,
        id: SfId,
        input: &Map<String, Value>,
        ctx: WriteCtx,
    ) -> Result<(), ApiError> {
        let idx = self.live_index(o, id)?;
        if o == Obj::Lead && !ctx.seeding && self.lead_converted(&self.table(o).recs[idx as usize])
        {
            return Err(ApiError::rec(
                "CANNOT_UPDATE_CONVERTED_LEAD",
                "cannot reference converted lead",
                &[],
            ));
        }
        let vals = self.collect(o, input, false, ctx)?;
        if !ctx.seeding {
            // Required fields may not be blanked.
            for (i, v, _) in &vals {
                let fd = &o.fields()[*i as usize];
                if fd.required && v.is_null() {
                    return Err(ApiError::rec(
                        "REQUIRED_FIELD_MISSING",
                        format!("Required fields are missing: [{}]", fd.name),
                        &[fd.name],
                    ));
                }
            }
        }
        let now = self.now();
        let lm = o.field_idx("LastModifiedById");
        let r = self.rec_mut(o, idx);
        let mut stamp = None;
        for (i, v, dt) in vals {
            if let Some(ms) = dt {
                match o.fields()[i as usize].kind {
                    Kind::CreatedDate => r.created = ms,
                    Kind::LastModifiedDate => r.modified = ms,
                    _ => stamp = Some(ms),
                }
            } else {
                r.set(i, v);
            }
        }
        if !ctx.seeding {
            r.modified = now;
            if let Some(lm) = lm {
                r.set(lm, Val::Id(ctx.user));
            }
        }
        r.modstamp = stamp.unwrap_or(now);
        Ok(())
    }

    pub(crate) fn delete(&mut self, o: Obj, id: SfId) -> Result<(), ApiError> {
        let idx = self.live_index(o, id)?;
        let now = self.now();
        let n = self.delete_log.len();
        if let Some(u) = &mut self.undo {
            u.push(Undo::DeleteLog(n));
        }
        let r = self.rec_mut(o, idx);
        r.deleted_at = Some(now);
        r.modstamp = now;
        self.delete_log.push((o, id, now));
        Ok(())
    }

    pub(crate) fn merge(&mut self, o: Obj, winner: SfId, loser: SfId) -> Result<(), ApiError> {
        let w = self.live_index(o, winner)?;
        self.delete(o, loser)?;
        let now = self.now();
        if let Some((li, _)) = self.find(o, loser)
            && let Some(m) = o.field_idx("MasterRecordId")
        {
            self.rec_mut(o, li).set(m, Val::Id(winner));
        }
        // Re-parent activities.
        if let Some(who) = Obj::Task.field_idx("WhoId") {
            let tasks: Vec<u32> = self
                .table(Obj::Task)
                .recs
                .iter()
                .enumerate()
                .filter(|(_, r)| matches!(r.get(who), Val::Id(x) if *x == loser))
                .map(|(i, _)| i as u32)
                .collect();
            for t in tasks {
                let r = self.rec_mut(Obj::Task, t);
                r.set(who, Val::Id(winner));
                r.modstamp = now;
            }
        }
        let r = self.rec_mut(o, w);
        r.modstamp = now;
        r.modified = now;
        Ok(())
    }

    pub(crate) fn consume_lock_fault(&mut self, id: Option<SfId>) -> Result<(), ApiError> {
        if self.faults.lock_row > 0 {
            self.faults.lock_row -= 1;
            let which = id.map_or_else(String::new, |i| format!(": {i}"));
            return Err(ApiError::rec(
                "UNABLE_TO_LOCK_ROW",
                format!("unable to obtain exclusive access to this record or 1 records{which}"),
                &[],
            ));
        }
        Ok(())
    }

    // ----- duplicate rule -------------------------------------------------------------------------

    fn dup_keys(&self, o: Obj, r: &Record) -> (Option<String>, Option<String>) {
        let phone = o
            .field_idx("Phone")
            .and_then(|i| r.get(i).as_text().map(|s| phone::key(&s)))
            .filter(|k| k.len() >= 6);
        let name = match o {
            Obj::Account => o
                .field_idx("Name")
                .and_then(|i| r.get(i).as_text().map(|s| s.trim().to_lowercase())),
            _ => self
                .value(o, r, o.field_idx("Name").unwrap_or(0))
                .as_text()
                .map(|s| s.trim().to_lowercase()),
        };
        (phone, name.filter(|n| !n.is_empty()))
    }

    pub(crate) fn find_duplicates(&self, o: Obj, cand: &Record) -> Vec<(Obj, SfId)> {
        let (phone, name) = self.dup_keys(o, cand);
        let mut order = vec![o];
        match o {
            Obj::Lead => order.push(Obj::Contact),
            Obj::Contact => order.push(Obj::Lead),
            _ => {}
        }
        let mut out = Vec::new();
        for t in order {
            for r in self.table(t).recs.iter().filter(|r| r.is_live()) {
                let (p, n) = self.dup_keys(t, r);
                if (phone.is_some() && p == phone) || (name.is_some() && n == name) {
                    out.push((t, r.id));
                }
            }
        }
        out
    }

    fn duplicate_error(&self, o: Obj, dups: &[(Obj, SfId)]) -> ApiError {
        let msg =
            "You're creating a duplicate record. We recommend you use an existing record instead.";
        let mut results = Vec::new();
        for t in ALL_OBJS {
            let recs: Vec<J> = dups
                .iter()
                .filter(|(dt, _)| *dt == t)
                .map(|(_, id)| {
                    J::obj()
                        .with("additionalInformation", J::Arr(vec![]))
                        .with("fieldDiffs", J::Arr(vec![]))
                        .with("matchConfidence", J::Num(100.0))
                        .with(
                            "record",
                            J::obj()
                                .with("attributes", Self::attributes(t, *id, VERSION_PLACEHOLDER))
                                .with("Id", J::s(id.to_string())),
                        )
                })
                .collect();
            if recs.is_empty() {
                continue;
            }
            let n = recs.len() as i64;
            results.push(
                J::obj()
                    .with("entityType", J::s(t.name()))
                    .with("errorMessage", J::Null)
                    .with("matchEngine", J::s("FuzzyMatchEngine"))
                    .with("matchRecords", J::Arr(recs))
                    .with(
                        "rule",
                        J::s(format!("Standard_{}_Match_Rule_v1_0", t.name())),
                    )
                    .with("size", J::Int(n))
                    .with("success", J::Bool(true)),
            );
        }
        // Same object type first.
        results.sort_by_key(|r| r.get("entityType") != Some(&J::s(o.name())));
        let dup = J::obj()
            .with("allowSave", J::Bool(true))
            .with(
                "duplicateRule",
                J::s(format!(
                    "Standard_Rule_for_{}s_with_Duplicate_{}s",
                    o.name(),
                    o.name()
                )),
            )
            .with("duplicateRuleEntityType", J::s(o.name()))
            .with("errorMessage", J::s(msg))
            .with("matchResults", J::Arr(results));
        ApiError {
            duplicate: Some(dup),
            fields: Some(vec![]),
            ..ApiError::new(400, "DUPLICATES_DETECTED", msg)
        }
    }
}
