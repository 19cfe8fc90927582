//! R40: every failure explained to an admin in plain Japanese and English, with the
//! Salesforce setting to change.

use crate::ports::Failure;
use crate::{OrgProblem, SfError};

fn failure(e: &SfError, en: String, ja: String, fix: Option<(String, String)>) -> Failure {
    let (fix_en, fix_ja) = match fix {
        Some((en, ja)) => (Some(en), Some(ja)),
        None => (None, None),
    };
    Failure {
        class: e.class(),
        code: e.code().to_owned(),
        message_en: en,
        message_ja: ja,
        fix_en,
        fix_ja,
    }
}

fn on(object: &Option<String>, field: &Option<String>) -> String {
    match (object, field) {
        (Some(o), Some(f)) => format!("{o}.{f}"),
        (Some(o), None) => o.clone(),
        (None, Some(f)) => f.clone(),
        (None, None) => "-".to_owned(),
    }
}

/// The object as Salesforce's Japanese UI names it.
fn object_ja(object: &str) -> &str {
    match object {
        "Lead" => "リード",
        "Contact" => "取引先責任者",
        "Account" => "取引先",
        "Task" => "ToDo",
        other => other,
    }
}

/// Turns a Salesforce failure into what the admin view shows (R40).
pub fn explain(e: &SfError) -> Failure {
    match e {
        SfError::Transient { cause, .. } => failure(
            e,
            format!("Salesforce was temporarily unavailable ({cause}); callsync retries automatically."),
            format!("Salesforceが一時的に利用できませんでした（{cause}）。自動的に再試行します。"),
            None,
        ),
        SfError::Throttled { cause, .. } => failure(
            e,
            format!("The org's daily API allowance is used up ({cause}); work resumes when it recovers."),
            format!("SalesforceのAPI使用上限に達しました（{cause}）。上限が回復すると自動的に再開します。"),
            Some((
                "Setup > Company Information shows API requests in the last 24 hours; reduce other integrations' use or raise the allowance.".into(),
                "設定 > 組織情報 で過去24時間のAPI要求数を確認し、他の連携の使用量を減らすか上限を引き上げてください。".into(),
            )),
        ),
        SfError::NeedsReconnect { cause, .. } => failure(
            e,
            format!("The Salesforce connection was revoked or expired ({cause}). Calls are held until an admin reconnects."),
            format!("Salesforceとの接続が取り消されたか期限切れです（{cause}）。管理者が再連携するまで通話の書き出しは保留されます。"),
            Some((
                "Open callsync's integration page and press Connect again.".into(),
                "callsyncの連携画面から［連携］ボタンをもう一度押してください。".into(),
            )),
        ),
        SfError::OrgConfig { problem, object, field, cause, .. } => {
            let at = on(object, field);
            let obj = object.as_deref().unwrap_or("Lead/Contact");
            let fld = field.as_deref().unwrap_or("-");
            let obj_ja = object_ja(obj);
            let (en, ja, fix) = match problem {
                OrgProblem::HiddenField => (
                    format!("The field {at} is not visible to the connected user (field-level security); the sync stopped rather than import partial data."),
                    format!("項目 {at} が連携ユーザーから参照できません（項目レベルセキュリティ）。不完全な取り込みを避けるため同期を停止しました。"),
                    (
                        format!("Setup > Object Manager > {obj} > Fields & Relationships > {fld} > Set Field-Level Security: make it visible for the connected user's profile."),
                        format!("設定 > オブジェクトマネージャ > {obj_ja} > 項目とリレーション > {fld} > 項目レベルセキュリティを設定 で、連携ユーザーのプロファイルに表示を許可してください。"),
                    ),
                ),
                OrgProblem::ValidationRule => (
                    format!("A validation rule on {at} rejected the record: {cause}"),
                    format!("{at} の入力規則によりレコードが拒否されました：{cause}"),
                    (
                        format!("Setup > Object Manager > {obj} > Validation Rules: adjust the rule or the data, then retry."),
                        format!("設定 > オブジェクトマネージャ > {obj_ja} > 入力規則 で規則またはデータを見直してから再試行してください。"),
                    ),
                ),
                OrgProblem::DuplicateRule => (
                    format!("A duplicate rule blocked creating a {obj}: {cause}"),
                    format!("重複ルールにより{obj_ja}を作成できませんでした：{cause}"),
                    (
                        "Setup > Duplicate Management > Duplicate Rules: set the action to Allow/Alert, or turn on 'allow save' in callsync's settings.".into(),
                        "設定 > 重複管理 > 重複ルール で処理を「許可」「警告」にするか、callsyncの設定で重複を許可して保存するを有効にしてください。".into(),
                    ),
                ),
                OrgProblem::ConvertedLead => (
                    format!("The Lead was converted and can no longer be written: {cause}"),
                    format!("リードは取引開始済みのため書き込めません：{cause}"),
                    (
                        "No change needed: the next sync relinks the customer to the converted Contact; then retry.".into(),
                        "設定変更は不要です。次回の同期で取引先責任者へ再リンクされた後に再試行してください。".into(),
                    ),
                ),
                OrgProblem::ApiDisabled => (
                    format!("The org or the connected user has no REST API access: {cause}"),
                    format!("この組織または連携ユーザーはREST APIを利用できません：{cause}"),
                    (
                        "REST API needs Enterprise, Unlimited or Developer Edition (Professional only with the API add-on) and the 'API Enabled' permission on the user's profile.".into(),
                        "REST APIの利用にはEnterprise・Unlimited・Developer Edition（ProfessionalはAPIオプションが必要）と、ユーザーのプロファイルの「API の有効化」権限が必要です。".into(),
                    ),
                ),
                OrgProblem::IpRestricted => (
                    format!("Salesforce rejected callsync's servers because of login IP restrictions: {cause}"),
                    format!("ログインIP制限によりSalesforceがcallsyncのサーバーからのアクセスを拒否しました：{cause}"),
                    (
                        "Setup > App Manager > the connected app > Manage > IP Relaxation: 'Relax IP restrictions', or remove the profile's Login IP Ranges for the connected user.".into(),
                        "設定 > アプリケーションマネージャ > 接続アプリケーション > 管理 > IP制限の緩和 を「IP制限の緩和」にするか、連携ユーザーのプロファイルのログインIPアドレスの制限を見直してください。".into(),
                    ),
                ),
                OrgProblem::MissingPermission => (
                    format!("The connected user lacks access to {at}: {cause}"),
                    format!("連携ユーザーに {at} へのアクセス権がありません：{cause}"),
                    (
                        format!("Setup > Profiles or Permission Sets: give the connected user read/create/edit on {obj}."),
                        format!("設定 > プロファイル または 権限セット で、連携ユーザーに {obj_ja} の参照・作成・編集権限を付与してください。"),
                    ),
                ),
            };
            failure(e, en, ja, Some(fix))
        }
        SfError::Duplicate { cause, .. } => failure(
            e,
            format!("A duplicate rule matched existing records that callsync could not link: {cause}"),
            format!("重複ルールが既存レコードと一致しましたが、リンクできませんでした：{cause}"),
            Some((
                "Setup > Duplicate Management > Duplicate Rules, or turn on 'allow save' in callsync's settings.".into(),
                "設定 > 重複管理 > 重複ルール を確認するか、callsyncの設定で重複を許可して保存するを有効にしてください。".into(),
            )),
        ),
        SfError::BadData { object, field, cause, .. } => {
            let at = on(object, field);
            failure(
                e,
                format!("Salesforce rejected the data for {at}: {cause}"),
                format!("Salesforceが {at} のデータを受け付けませんでした：{cause}"),
                None,
            )
        }
        SfError::NotFound { cause } => failure(
            e,
            format!("The Salesforce record no longer exists: {cause}"),
            format!("Salesforceのレコードが見つかりません：{cause}"),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorClass;

    #[test]
    fn r40_every_failure_has_japanese_and_english_and_org_problems_a_fix() {
        let problems = [
            OrgProblem::HiddenField,
            OrgProblem::ValidationRule,
            OrgProblem::DuplicateRule,
            OrgProblem::ConvertedLead,
            OrgProblem::ApiDisabled,
            OrgProblem::IpRestricted,
            OrgProblem::MissingPermission,
        ];
        for p in problems {
            let f = explain(&SfError::OrgConfig {
                problem: p,
                code: "X".into(),
                object: Some("Lead".into()),
                field: Some("Email".into()),
                cause: "c".into(),
            });
            assert_eq!(f.class, ErrorClass::OrgConfig);
            assert!(f.fix_en.is_some() && f.fix_ja.is_some(), "{p:?} has no fix");
            assert!(!f.message_ja.is_empty() && !f.message_ja.is_ascii());
        }
        let hidden = explain(&SfError::OrgConfig {
            problem: OrgProblem::HiddenField,
            code: "INVALID_FIELD".into(),
            object: Some("Lead".into()),
            field: Some("Email".into()),
            cause: "No such column".into(),
        });
        // R10: names the object and field and where to make it visible.
        assert!(hidden.message_en.contains("Lead.Email"));
        assert!(
            hidden
                .fix_ja
                .as_deref()
                .unwrap_or("")
                .contains("項目レベルセキュリティ")
        );
        assert!(
            hidden
                .fix_en
                .as_deref()
                .unwrap_or("")
                .contains("Object Manager > Lead")
        );
        let reconnect = explain(&SfError::NeedsReconnect {
            code: "invalid_grant".into(),
            cause: "expired".into(),
        });
        assert_eq!(reconnect.class, ErrorClass::NeedsReconnect);
        assert_eq!(reconnect.code, "invalid_grant");
    }

    #[test]
    fn c1_c2_api_disabled_and_ip_restricted_are_said_plainly() {
        let c1 = explain(&SfError::OrgConfig {
            problem: OrgProblem::ApiDisabled,
            code: "API_DISABLED_FOR_ORG".into(),
            object: None,
            field: None,
            cause: "API is not enabled for this Organization or Partner".into(),
        });
        assert!(c1.message_en.contains("REST API"));
        assert!(c1.fix_en.as_deref().unwrap_or("").contains("Enterprise"));
        let c2 = explain(&SfError::OrgConfig {
            problem: OrgProblem::IpRestricted,
            code: "INVALID_SESSION_ID".into(),
            object: None,
            field: None,
            cause: "This session is not valid for use with the REST API".into(),
        });
        assert!(c2.message_en.contains("IP restrictions"));
        assert!(c2.message_ja.contains("IP制限"));
    }
}
