//! The simulated objects and their fields (a subset of the standard schema, with real lengths).

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Obj {
    Lead,
    Contact,
    Account,
    Task,
    User,
}

pub(crate) const ALL_OBJS: [Obj; 5] = [Obj::Lead, Obj::Contact, Obj::Account, Obj::Task, Obj::User];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FType {
    Id,
    String,
    Textarea,
    Phone,
    Email,
    Url,
    Picklist,
    Combobox,
    Boolean,
    DateTime,
    Date,
    Reference,
    Int,
    Double,
    Address,
}

impl FType {
    pub(crate) fn api_name(self) -> &'static str {
        match self {
            FType::Id => "id",
            FType::String => "string",
            FType::Textarea => "textarea",
            FType::Phone => "phone",
            FType::Email => "email",
            FType::Url => "url",
            FType::Picklist => "picklist",
            FType::Combobox => "combobox",
            FType::Boolean => "boolean",
            FType::DateTime => "datetime",
            FType::Date => "date",
            FType::Reference => "reference",
            FType::Int => "int",
            FType::Double => "double",
            FType::Address => "address",
        }
    }

    pub(crate) fn is_text(self) -> bool {
        matches!(
            self,
            FType::String
                | FType::Textarea
                | FType::Phone
                | FType::Email
                | FType::Url
                | FType::Picklist
                | FType::Combobox
        )
    }
}

/// How a field's value is produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Stored in the record's sparse field list.
    Stored,
    /// Record struct fields.
    Id,
    IsDeleted,
    CreatedDate,
    LastModifiedDate,
    SystemModstamp,
    /// Computed when read.
    Name,
    /// Compound address built from fields with this prefix ("" for Lead, "Mailing" …).
    Address(&'static str),
    TaskIsClosed,
    TaskAccountId,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct FieldDef {
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) ty: FType,
    pub(crate) len: u32,
    pub(crate) create: bool,
    pub(crate) update: bool,
    pub(crate) nillable: bool,
    pub(crate) required: bool,
    pub(crate) kind: Kind,
    pub(crate) refs: &'static [&'static str],
    pub(crate) rel: Option<&'static str>,
    pub(crate) picklist: &'static [&'static str],
    pub(crate) default: Option<&'static str>,
}

const fn f(name: &'static str, label: &'static str, ty: FType, len: u32) -> FieldDef {
    FieldDef {
        name,
        label,
        ty,
        len,
        create: true,
        update: true,
        nillable: true,
        required: false,
        kind: Kind::Stored,
        refs: &[],
        rel: None,
        picklist: &[],
        default: None,
    }
}

impl FieldDef {
    const fn ro(mut self) -> Self {
        self.create = false;
        self.update = false;
        self
    }
    const fn create_only(mut self) -> Self {
        self.update = false;
        self
    }
    const fn req(mut self) -> Self {
        self.required = true;
        self.nillable = false;
        self
    }
    const fn not_null(mut self) -> Self {
        self.nillable = false;
        self
    }
    const fn kind(mut self, k: Kind) -> Self {
        self.kind = k;
        self
    }
    const fn refs(mut self, to: &'static [&'static str], rel: &'static str) -> Self {
        self.refs = to;
        self.rel = Some(rel);
        self
    }
    const fn pick(
        mut self,
        values: &'static [&'static str],
        default: Option<&'static str>,
    ) -> Self {
        self.picklist = values;
        self.default = default;
        if default.is_some() {
            self.nillable = false;
        }
        self
    }
}

use FType as T;

const LEAD_STATUS: &[&str] = &[
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
];
const LEAD_SOURCE: &[&str] = &[
    "Web",
    "Phone Inquiry",
    "Partner Referral",
    "Purchased List",
    "Other",
];
const TASK_STATUS: &[&str] = &[
    "Not Started",
    "In Progress",
    "Completed",
    "Waiting on someone else",
    "Deferred",
];
const TASK_PRIORITY: &[&str] = &["High", "Normal", "Low"];
const TASK_SUBTYPE: &[&str] = &["Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"];
const CALL_TYPE: &[&str] = &["Internal", "Inbound", "Outbound"];
const GEO: &[&str] = &[
    "Address",
    "NearAddress",
    "Block",
    "Street",
    "ExtendedZip",
    "Zip",
    "Neighborhood",
    "City",
    "County",
    "State",
    "Unknown",
];

macro_rules! system_fields {
    () => {
        [
            f("CreatedDate", "Created Date", T::DateTime, 0)
                .ro()
                .not_null()
                .kind(Kind::CreatedDate),
            f("CreatedById", "Created By ID", T::Reference, 18)
                .ro()
                .not_null()
                .refs(&["User"], "CreatedBy"),
            f("LastModifiedDate", "Last Modified Date", T::DateTime, 0)
                .ro()
                .not_null()
                .kind(Kind::LastModifiedDate),
            f("LastModifiedById", "Last Modified By ID", T::Reference, 18)
                .ro()
                .not_null()
                .refs(&["User"], "LastModifiedBy"),
            f("SystemModstamp", "System Modstamp", T::DateTime, 0)
                .ro()
                .not_null()
                .kind(Kind::SystemModstamp),
        ]
    };
}

const fn concat<const A: usize, const B: usize, const C: usize>(
    a: [FieldDef; A],
    b: [FieldDef; B],
) -> [FieldDef; C] {
    let mut out = [a[0]; C];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < B {
        out[A + j] = b[j];
        j += 1;
    }
    out
}

const LEAD_OWN: [FieldDef; 35] = [
    f("Id", "Lead ID", T::Id, 18).ro().not_null().kind(Kind::Id),
    f("IsDeleted", "Deleted", T::Boolean, 0)
        .ro()
        .not_null()
        .kind(Kind::IsDeleted),
    f("MasterRecordId", "Master Record ID", T::Reference, 18)
        .ro()
        .refs(&["Lead"], "MasterRecord"),
    f("LastName", "Last Name", T::String, 80).req(),
    f("FirstName", "First Name", T::String, 40),
    f("Salutation", "Salutation", T::Picklist, 40),
    f("Name", "Full Name", T::String, 121)
        .ro()
        .not_null()
        .kind(Kind::Name),
    f("Title", "Title", T::String, 128),
    f("Company", "Company", T::String, 255).req(),
    f("Street", "Street", T::Textarea, 255),
    f("City", "City", T::String, 40),
    f("State", "State/Province", T::String, 80),
    f("PostalCode", "Zip/Postal Code", T::String, 20),
    f("Country", "Country", T::String, 80),
    f("Latitude", "Latitude", T::Double, 0),
    f("Longitude", "Longitude", T::Double, 0),
    f("GeocodeAccuracy", "Geocode Accuracy", T::Picklist, 40).pick(GEO, None),
    f("Address", "Address", T::Address, 0)
        .ro()
        .kind(Kind::Address("")),
    f("Phone", "Phone", T::Phone, 40),
    f("MobilePhone", "Mobile Phone", T::Phone, 40),
    f("Fax", "Fax", T::Phone, 40),
    f("Email", "Email", T::Email, 80),
    f("Website", "Website", T::Url, 255),
    f("Description", "Description", T::Textarea, 32000),
    f("LeadSource", "Lead Source", T::Picklist, 255).pick(LEAD_SOURCE, None),
    f("Status", "Status", T::Picklist, 255).pick(LEAD_STATUS, Some("Open - Not Contacted")),
    f("Industry", "Industry", T::Picklist, 255),
    f("NumberOfEmployees", "Employees", T::Int, 0),
    f("OwnerId", "Owner ID", T::Reference, 18)
        .not_null()
        .refs(&["User"], "Owner"),
    f("IsConverted", "Converted", T::Boolean, 0)
        .create_only()
        .not_null(),
    f("ConvertedDate", "Converted Date", T::Date, 0).create_only(),
    f(
        "ConvertedAccountId",
        "Converted Account ID",
        T::Reference,
        18,
    )
    .create_only()
    .refs(&["Account"], "ConvertedAccount"),
    f(
        "ConvertedContactId",
        "Converted Contact ID",
        T::Reference,
        18,
    )
    .create_only()
    .refs(&["Contact"], "ConvertedContact"),
    f("IsUnreadByOwner", "Unread By Owner", T::Boolean, 0).not_null(),
    f("LastActivityDate", "Last Activity", T::Date, 0).ro(),
];
pub(crate) static LEAD: [FieldDef; 40] = concat(LEAD_OWN, system_fields!());

const CONTACT_OWN: [FieldDef; 29] = [
    f("Id", "Contact ID", T::Id, 18)
        .ro()
        .not_null()
        .kind(Kind::Id),
    f("IsDeleted", "Deleted", T::Boolean, 0)
        .ro()
        .not_null()
        .kind(Kind::IsDeleted),
    f("MasterRecordId", "Master Record ID", T::Reference, 18)
        .ro()
        .refs(&["Contact"], "MasterRecord"),
    f("AccountId", "Account ID", T::Reference, 18).refs(&["Account"], "Account"),
    f("LastName", "Last Name", T::String, 80).req(),
    f("FirstName", "First Name", T::String, 40),
    f("Salutation", "Salutation", T::Picklist, 40),
    f("Name", "Full Name", T::String, 121)
        .ro()
        .not_null()
        .kind(Kind::Name),
    f("MailingStreet", "Mailing Street", T::Textarea, 255),
    f("MailingCity", "Mailing City", T::String, 40),
    f("MailingState", "Mailing State/Province", T::String, 80),
    f(
        "MailingPostalCode",
        "Mailing Zip/Postal Code",
        T::String,
        20,
    ),
    f("MailingCountry", "Mailing Country", T::String, 80),
    f("MailingLatitude", "Mailing Latitude", T::Double, 0),
    f("MailingLongitude", "Mailing Longitude", T::Double, 0),
    f(
        "MailingGeocodeAccuracy",
        "Mailing Geocode Accuracy",
        T::Picklist,
        40,
    )
    .pick(GEO, None),
    f("MailingAddress", "Mailing Address", T::Address, 0)
        .ro()
        .kind(Kind::Address("Mailing")),
    f("Phone", "Business Phone", T::Phone, 40),
    f("Fax", "Business Fax", T::Phone, 40),
    f("MobilePhone", "Mobile Phone", T::Phone, 40),
    f("HomePhone", "Home Phone", T::Phone, 40),
    f("OtherPhone", "Other Phone", T::Phone, 40),
    f("Email", "Email", T::Email, 80),
    f("Title", "Title", T::String, 128),
    f("Department", "Department", T::String, 80),
    f("LeadSource", "Lead Source", T::Picklist, 255).pick(LEAD_SOURCE, None),
    f("Description", "Contact Description", T::Textarea, 32000),
    f("OwnerId", "Owner ID", T::Reference, 18)
        .not_null()
        .refs(&["User"], "Owner"),
    f("LastActivityDate", "Last Activity", T::Date, 0).ro(),
];
pub(crate) static CONTACT: [FieldDef; 34] = concat(CONTACT_OWN, system_fields!());

const ACCOUNT_OWN: [FieldDef; 30] = [
    f("Id", "Account ID", T::Id, 18)
        .ro()
        .not_null()
        .kind(Kind::Id),
    f("IsDeleted", "Deleted", T::Boolean, 0)
        .ro()
        .not_null()
        .kind(Kind::IsDeleted),
    f("MasterRecordId", "Master Record ID", T::Reference, 18)
        .ro()
        .refs(&["Account"], "MasterRecord"),
    f("Name", "Account Name", T::String, 255).req(),
    f("Type", "Account Type", T::Picklist, 255),
    f("ParentId", "Parent Account ID", T::Reference, 18).refs(&["Account"], "Parent"),
    f("BillingStreet", "Billing Street", T::Textarea, 255),
    f("BillingCity", "Billing City", T::String, 40),
    f("BillingState", "Billing State/Province", T::String, 80),
    f(
        "BillingPostalCode",
        "Billing Zip/Postal Code",
        T::String,
        20,
    ),
    f("BillingCountry", "Billing Country", T::String, 80),
    f("BillingLatitude", "Billing Latitude", T::Double, 0),
    f("BillingLongitude", "Billing Longitude", T::Double, 0),
    f(
        "BillingGeocodeAccuracy",
        "Billing Geocode Accuracy",
        T::Picklist,
        40,
    )
    .pick(GEO, None),
    f("BillingAddress", "Billing Address", T::Address, 0)
        .ro()
        .kind(Kind::Address("Billing")),
    f("ShippingStreet", "Shipping Street", T::Textarea, 255),
    f("ShippingCity", "Shipping City", T::String, 40),
    f("ShippingState", "Shipping State/Province", T::String, 80),
    f(
        "ShippingPostalCode",
        "Shipping Zip/Postal Code",
        T::String,
        20,
    ),
    f("ShippingCountry", "Shipping Country", T::String, 80),
    f("ShippingLatitude", "Shipping Latitude", T::Double, 0),
    f("ShippingLongitude", "Shipping Longitude", T::Double, 0),
    f(
        "ShippingGeocodeAccuracy",
        "Shipping Geocode Accuracy",
        T::Picklist,
        40,
    )
    .pick(GEO, None),
    f("ShippingAddress", "Shipping Address", T::Address, 0)
        .ro()
        .kind(Kind::Address("Shipping")),
    f("Phone", "Account Phone", T::Phone, 40),
    f("Fax", "Account Fax", T::Phone, 40),
    f("Website", "Website", T::Url, 255),
    f("Industry", "Industry", T::Picklist, 255),
    f("Description", "Account Description", T::Textarea, 32000),
    f("OwnerId", "Owner ID", T::Reference, 18)
        .not_null()
        .refs(&["User"], "Owner"),
];
pub(crate) static ACCOUNT: [FieldDef; 35] = concat(ACCOUNT_OWN, system_fields!());

const TASK_OWN: [FieldDef; 19] = [
    f("Id", "Activity ID", T::Id, 18)
        .ro()
        .not_null()
        .kind(Kind::Id),
    f("WhoId", "Name ID", T::Reference, 18).refs(&["Contact", "Lead"], "Who"),
    f("WhatId", "Related To ID", T::Reference, 18).refs(&["Account"], "What"),
    f("Subject", "Subject", T::Combobox, 255),
    f("ActivityDate", "Due Date Only", T::Date, 0),
    f("Status", "Status", T::Picklist, 255).pick(TASK_STATUS, Some("Not Started")),
    f("Priority", "Priority", T::Picklist, 255).pick(TASK_PRIORITY, Some("Normal")),
    f("OwnerId", "Assigned To ID", T::Reference, 18)
        .not_null()
        .refs(&["User"], "Owner"),
    f("Description", "Description", T::Textarea, 32000),
    f("IsDeleted", "Deleted", T::Boolean, 0)
        .ro()
        .not_null()
        .kind(Kind::IsDeleted),
    f("AccountId", "Account ID", T::Reference, 18)
        .ro()
        .refs(&["Account"], "Account")
        .kind(Kind::TaskAccountId),
    f("IsClosed", "Closed", T::Boolean, 0)
        .ro()
        .not_null()
        .kind(Kind::TaskIsClosed),
    f("TaskSubtype", "Task Subtype", T::Picklist, 40)
        .create_only()
        .pick(TASK_SUBTYPE, Some("Task")),
    f("CallDurationInSeconds", "Call Duration", T::Int, 0),
    f("CallType", "Call Type", T::Picklist, 40).pick(CALL_TYPE, None),
    f("CallDisposition", "Call Result", T::String, 255),
    f("CallObject", "Call Object Identifier", T::String, 255),
    f("IsArchived", "Archived", T::Boolean, 0).ro().not_null(),
    f("ReminderDateTime", "Reminder Date/Time", T::DateTime, 0),
];
pub(crate) static TASK: [FieldDef; 24] = concat(TASK_OWN, system_fields!());

const USER_OWN: [FieldDef; 16] = [
    f("Id", "User ID", T::Id, 18).ro().not_null().kind(Kind::Id),
    f("Username", "Username", T::String, 80).req(),
    f("LastName", "Last Name", T::String, 80).req(),
    f("FirstName", "First Name", T::String, 40),
    f("Name", "Full Name", T::String, 121)
        .ro()
        .not_null()
        .kind(Kind::Name),
    f("CompanyName", "Company Name", T::String, 80),
    f("Email", "Email", T::Email, 128).req(),
    f("Alias", "Alias", T::String, 8),
    f("Phone", "Phone", T::Phone, 40),
    f("MobilePhone", "Mobile", T::Phone, 40),
    f("IsActive", "Active", T::Boolean, 0).not_null(),
    f("TimeZoneSidKey", "Time Zone", T::Picklist, 40).pick(&[], Some("Asia/Tokyo")),
    f("LocaleSidKey", "Locale", T::Picklist, 40).pick(&[], Some("ja_JP")),
    f("LanguageLocaleKey", "Language", T::Picklist, 40).pick(&[], Some("ja")),
    f("UserType", "User Type", T::Picklist, 40)
        .ro()
        .pick(&[], Some("Standard")),
    f("LastLoginDate", "Last Login", T::DateTime, 0).ro(),
];
pub(crate) static USER: [FieldDef; 21] = concat(USER_OWN, system_fields!());

impl Obj {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Obj::Lead => "Lead",
            Obj::Contact => "Contact",
            Obj::Account => "Account",
            Obj::Task => "Task",
            Obj::User => "User",
        }
    }

    pub(crate) fn label(self) -> (&'static str, &'static str) {
        match self {
            Obj::Lead => ("Lead", "Leads"),
            Obj::Contact => ("Contact", "Contacts"),
            Obj::Account => ("Account", "Accounts"),
            Obj::Task => ("Task", "Tasks"),
            Obj::User => ("User", "Users"),
        }
    }

    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Obj::Lead => "00Q",
            Obj::Contact => "003",
            Obj::Account => "001",
            Obj::Task => "00T",
            Obj::User => "005",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn parse(s: &str) -> Option<Obj> {
        ALL_OBJS
            .into_iter()
            .find(|o| o.name().eq_ignore_ascii_case(s))
    }

    pub(crate) fn from_prefix(p: &str) -> Option<Obj> {
        ALL_OBJS.into_iter().find(|o| o.prefix() == p)
    }

    pub(crate) fn fields(self) -> &'static [FieldDef] {
        match self {
            Obj::Lead => &LEAD,
            Obj::Contact => &CONTACT,
            Obj::Account => &ACCOUNT,
            Obj::Task => &TASK,
            Obj::User => &USER,
        }
    }

    pub(crate) fn field(self, name: &str) -> Option<(u16, &'static FieldDef)> {
        self.fields()
            .iter()
            .enumerate()
            .find(|(_, f)| f.name.eq_ignore_ascii_case(name))
            .map(|(i, f)| (i as u16, f))
    }

    pub(crate) fn field_idx(self, name: &str) -> Option<u16> {
        self.field(name).map(|(i, _)| i)
    }

    /// The reference field whose relationship name is `rel` (e.g. `Account` → `AccountId`).
    pub(crate) fn relationship(self, rel: &str) -> Option<(u16, &'static FieldDef)> {
        self.fields()
            .iter()
            .enumerate()
            .find(|(_, f)| f.rel.is_some_and(|r| r.eq_ignore_ascii_case(rel)))
            .map(|(i, f)| (i as u16, f))
    }

    /// Fields a phone search (`IN PHONE FIELDS`) looks at.
    pub(crate) fn phone_fields(self) -> impl Iterator<Item = u16> {
        self.fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| f.ty == FType::Phone)
            .map(|(i, _)| i as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_have_system_fields_and_unique_names() {
        for o in ALL_OBJS {
            let names: Vec<_> = o.fields().iter().map(|f| f.name).collect();
            let mut dedup = names.clone();
            dedup.sort_unstable();
            dedup.dedup();
            assert_eq!(names.len(), dedup.len(), "{o:?}");
            assert!(o.field("systemmodstamp").is_some());
            assert_eq!(o.fields()[0].name, "Id");
        }
        assert_eq!(
            Obj::Contact.relationship("account").unwrap().1.name,
            "AccountId"
        );
    }
}
