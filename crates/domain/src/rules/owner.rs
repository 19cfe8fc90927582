//! R23: who owns a call's activity.

use crate::{EmailAddress, SalesforceId, SfUser};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The member's email matched an active User.
    Member(SalesforceId),
    /// No match: the connecting user owns it (and the member is listed, R41).
    ConnectingUser(SalesforceId),
}

impl Owner {
    pub fn user_id(&self) -> &SalesforceId {
        match self {
            Self::Member(id) | Self::ConnectingUser(id) => id,
        }
    }
}

/// Matches the member's email case-insensitively to an active User; otherwise the
/// connecting user. Several active Users with one email: the smallest Id, so the choice is
/// stable.
pub fn resolve_owner(
    member_email: Option<&str>,
    users: &[SfUser],
    connecting_user: &SalesforceId,
) -> Owner {
    let Some(email) = member_email.and_then(|e| EmailAddress::parse(e).ok()) else {
        return Owner::ConnectingUser(connecting_user.clone());
    };
    users
        .iter()
        .filter(|u| u.active && u.email.as_ref() == Some(&email))
        .map(|u| &u.id)
        .min()
        .map(|id| Owner::Member(id.clone()))
        .unwrap_or_else(|| Owner::ConnectingUser(connecting_user.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, email: Option<&str>, active: bool) -> SfUser {
        SfUser {
            id: SalesforceId::parse(id).unwrap(),
            email: email.map(|e| EmailAddress::parse(e).unwrap()),
            name: "x".into(),
            active,
        }
    }

    #[test]
    fn r23_owner_by_member_email_else_connecting_user() {
        let admin = SalesforceId::parse("005000000000001").unwrap();
        let users = vec![
            user("005000000000002", Some("Ichiro.Eigyo@example.jp"), true),
            user("005000000000003", Some("hanako@example.jp"), false),
            user("005000000000004", None, true),
            user("005000000000006", Some("dup@example.jp"), true),
            user("005000000000005", Some("DUP@example.jp"), true),
        ];
        let id = |s: &str| SalesforceId::parse(s).unwrap();
        let table: &[(Option<&str>, Owner)] = &[
            (
                Some("ichiro.eigyo@example.jp"),
                Owner::Member(id("005000000000002")),
            ),
            (
                Some("ICHIRO.EIGYO@EXAMPLE.JP"),
                Owner::Member(id("005000000000002")),
            ),
            (
                Some("hanako@example.jp"),
                Owner::ConnectingUser(admin.clone()),
            ), // inactive
            (
                Some("nobody@example.jp"),
                Owner::ConnectingUser(admin.clone()),
            ),
            (Some("not an email"), Owner::ConnectingUser(admin.clone())),
            (None, Owner::ConnectingUser(admin.clone())),
            (Some("dup@example.jp"), Owner::Member(id("005000000000005"))),
        ];
        for (email, expected) in table {
            assert_eq!(
                &resolve_owner(*email, &users, &admin),
                expected,
                "{email:?}"
            );
        }
    }
}
