//! Creating unknown callers in Salesforce (R30–R32).

use crate::ports::NewRecord;
use crate::{CustomerFields, PhoneNumber, SfObject};

/// Splits a name family-name-first at the first ASCII or full-width space (R30):
/// `電話 太郎` / `電話　太郎` → (`電話`, Some(`太郎`)); one word → (word, None).
pub fn split_name(name: &str) -> Option<(String, Option<String>)> {
    let name = name.trim_matches(|c: char| c == ' ' || c == '　' || c.is_whitespace());
    if name.is_empty() {
        return None;
    }
    match name.find([' ', '　']) {
        Some(i) => {
            let last = name[..i].to_owned();
            let rest = name[i..]
                .trim_matches(|c: char| c == ' ' || c == '　')
                .to_owned();
            Some((last, if rest.is_empty() { None } else { Some(rest) }))
        }
        None => Some((name.to_owned(), None)),
    }
}

/// What to create for an unknown caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreationPlan {
    /// R30: a Lead; Company is the customer's or the placeholder.
    Lead(NewRecord),
    /// R31/R32: a Contact under the Account named `account_name` (found, oldest first, or
    /// created). `record.account_id` is filled once the Account is known.
    Contact {
        account_name: String,
        record: NewRecord,
    },
}

/// Plans the record for a customer (R30–R32). `number` is the party's number; its raw text is
/// what lands in Phone and, without a name, in LastName.
pub fn plan_creation(
    create_as: SfObject,
    number: &PhoneNumber,
    fields: &CustomerFields,
    placeholder_account: &str,
) -> CreationPlan {
    let (last_name, first_name) = fields
        .name
        .as_deref()
        .and_then(split_name)
        .unwrap_or_else(|| (number.raw().to_owned(), None));
    let company = fields
        .company
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let email = fields
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    let phone = number.raw().to_owned();
    match create_as {
        SfObject::Lead => CreationPlan::Lead(NewRecord {
            object: SfObject::Lead,
            last_name,
            first_name,
            company: Some(company.unwrap_or_else(|| placeholder_account.to_owned())),
            account_id: None,
            phone,
            email,
        }),
        SfObject::Contact => CreationPlan::Contact {
            account_name: company.unwrap_or_else(|| placeholder_account.to_owned()),
            record: NewRecord {
                object: SfObject::Contact,
                last_name,
                first_name,
                company: None,
                account_id: None,
                phone,
                email,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r30_name_split_at_first_ascii_or_full_width_space() {
        type Split<'a> = Option<(&'a str, Option<&'a str>)>;
        let table: &[(&str, Split<'_>)] = &[
            ("電話 太郎", Some(("電話", Some("太郎")))),
            ("電話　太郎", Some(("電話", Some("太郎")))),
            ("  電話　太郎 ", Some(("電話", Some("太郎")))),
            ("電話 太郎 次郎", Some(("電話", Some("太郎 次郎")))),
            ("山田", Some(("山田", None))),
            ("Smith John", Some(("Smith", Some("John")))),
            ("", None),
            ("　 ", None),
        ];
        for (input, expected) in table {
            let got = split_name(input);
            let expected = expected.map(|(l, f)| (l.to_owned(), f.map(str::to_owned)));
            assert_eq!(got, expected, "{input:?}");
        }
    }

    fn number() -> PhoneNumber {
        PhoneNumber::parse("03-1234-5678").unwrap()
    }

    #[test]
    fn r30_lead_without_name_uses_number_and_placeholder_company() {
        let plan = plan_creation(
            SfObject::Lead,
            &number(),
            &CustomerFields::default(),
            "CallConnect 取引先",
        );
        let CreationPlan::Lead(r) = plan else {
            panic!("expected a Lead")
        };
        assert_eq!(r.last_name, "03-1234-5678");
        assert_eq!(r.first_name, None);
        assert_eq!(r.company.as_deref(), Some("CallConnect 取引先"));
        assert_eq!(r.phone, "03-1234-5678");
    }

    #[test]
    fn r30_lead_with_name_company_and_email() {
        let fields = CustomerFields {
            name: Some("電話　太郎".into()),
            company: Some("株式会社サンプル".into()),
            email: Some("taro@example.jp".into()),
            ..Default::default()
        };
        let CreationPlan::Lead(r) = plan_creation(SfObject::Lead, &number(), &fields, "X") else {
            panic!("expected a Lead")
        };
        assert_eq!(
            (r.last_name.as_str(), r.first_name.as_deref()),
            ("電話", Some("太郎"))
        );
        assert_eq!(r.company.as_deref(), Some("株式会社サンプル"));
        assert_eq!(r.email.as_deref(), Some("taro@example.jp"));
    }

    #[test]
    fn r31_contact_without_company_goes_under_placeholder_account() {
        let plan = plan_creation(
            SfObject::Contact,
            &number(),
            &CustomerFields::default(),
            "CallConnect 取引先",
        );
        let CreationPlan::Contact {
            account_name,
            record,
        } = plan
        else {
            panic!("expected a Contact")
        };
        assert_eq!(account_name, "CallConnect 取引先");
        assert_eq!(record.company, None, "a Contact has no Company field");
        assert_eq!(record.object, SfObject::Contact);
    }

    #[test]
    fn r32_contact_with_company_goes_under_that_account() {
        let fields = CustomerFields {
            company: Some(" 株式会社サンプル ".into()),
            ..Default::default()
        };
        let CreationPlan::Contact { account_name, .. } =
            plan_creation(SfObject::Contact, &number(), &fields, "CallConnect 取引先")
        else {
            panic!("expected a Contact")
        };
        assert_eq!(account_name, "株式会社サンプル");
    }
}
