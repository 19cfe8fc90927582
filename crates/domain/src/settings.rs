//! A tenant's integration settings (R1–R6, seed 連携方法 steps 1–8).

use crate::{EventKind, SfObject};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Which Salesforce objects are synced (R1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncTargets {
    pub lead: bool,
    pub contact: bool,
}

impl SyncTargets {
    pub const BOTH: Self = Self {
        lead: true,
        contact: true,
    };
    pub fn contains(self, o: SfObject) -> bool {
        match o {
            SfObject::Lead => self.lead,
            SfObject::Contact => self.contact,
        }
    }
    pub fn objects(self) -> Vec<SfObject> {
        [SfObject::Lead, SfObject::Contact]
            .into_iter()
            .filter(|o| self.contains(*o))
            .collect()
    }
}

/// The language of Subjects and Descriptions written to Salesforce (R24).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    #[default]
    Ja,
    En,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IntegrationSettings {
    /// R1
    pub sync_targets: SyncTargets,
    /// R2 履歴オプション
    pub write_activity: bool,
    /// R3 顧客作成
    pub create_customers: bool,
    /// R4: required when `create_customers`, and one of `sync_targets`.
    pub create_as: Option<SfObject>,
    /// R5 録音テキスト変換
    pub write_transcription: bool,
    /// R6 通知イベント
    pub notify_on: BTreeSet<EventKind>,
    /// IANA zone for ActivityDate (R24). Default Asia/Tokyo.
    pub time_zone: String,
    pub language: Language,
    /// R31: the Account new Contacts without a company go under.
    pub placeholder_account: String,
    /// R35: send `allowSave=true` instead of linking the duplicate the rule points at.
    pub duplicate_allow_save: bool,
    /// R16: initial import window in days.
    pub import_window_days: u32,
    /// R16: optional cap on records per import run (default none).
    pub import_cap: Option<u64>,
    /// C3: share of the org's daily API allowance callsync may use, in percent.
    pub api_budget_percent: u8,
}

impl Default for IntegrationSettings {
    fn default() -> Self {
        Self {
            sync_targets: SyncTargets::BOTH,
            write_activity: true,
            create_customers: false,
            create_as: None,
            write_transcription: false,
            notify_on: default_notify_on(),
            time_zone: "Asia/Tokyo".to_owned(),
            language: Language::Ja,
            placeholder_account: "CallConnect 取引先".to_owned(),
            duplicate_allow_save: false,
            import_window_days: 365,
            import_cap: None,
            api_budget_percent: 20,
        }
    }
}

/// R6 default: every event but `transcription_completed` (which R5 governs).
pub fn default_notify_on() -> BTreeSet<EventKind> {
    [
        EventKind::CallEnded,
        EventKind::Missed,
        EventKind::Unanswered,
        EventKind::Voicemail,
        EventKind::MemoSaved,
    ]
    .into_iter()
    .collect()
}

/// One invalid setting: the field's name and why, in English and Japanese.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
    pub message_ja: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid settings: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
pub struct SettingsError(pub Vec<FieldError>);

impl IntegrationSettings {
    /// Checks R1–R6 and the tenant options; every problem is reported, each naming its field.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let mut errors = Vec::new();
        let mut push = |field: &'static str, en: &str, ja: &str| {
            errors.push(FieldError {
                field,
                message: en.to_owned(),
                message_ja: ja.to_owned(),
            })
        };
        if !self.sync_targets.lead && !self.sync_targets.contact {
            push(
                "sync_targets",
                "choose Lead, Contact, or both",
                "同期対象としてリードか取引先責任者の少なくとも一方を選択してください",
            );
        }
        if self.create_customers {
            match self.create_as {
                None => push(
                    "create_as",
                    "required when create_customers is on: Lead or Contact",
                    "顧客作成を有効にする場合は作成先（リードまたは取引先責任者）を選択してください",
                ),
                Some(o) if !self.sync_targets.contains(o) => push(
                    "create_as",
                    "must be one of sync_targets",
                    "作成先は同期対象に含まれている必要があります",
                ),
                Some(_) => {}
            }
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            push(
                "time_zone",
                "unknown IANA time zone",
                "タイムゾーンが不正です",
            );
        }
        if self.placeholder_account.trim().is_empty()
            || self.placeholder_account.chars().count() > 255
        {
            push(
                "placeholder_account",
                "must be 1–255 characters",
                "取引先名は1〜255文字で指定してください",
            );
        }
        if self.import_window_days == 0 || self.import_window_days > 3650 {
            push(
                "import_window_days",
                "must be between 1 and 3650",
                "取り込み期間は1〜3650日で指定してください",
            );
        }
        if self.import_cap == Some(0) {
            push(
                "import_cap",
                "must be positive or absent",
                "上限件数は1以上を指定してください",
            );
        }
        if self.api_budget_percent == 0 || self.api_budget_percent > 100 {
            push(
                "api_budget_percent",
                "must be between 1 and 100",
                "API使用上限は1〜100%で指定してください",
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SettingsError(errors))
        }
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::Asia::Tokyo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(s: &IntegrationSettings) -> Vec<&'static str> {
        match s.validate() {
            Ok(()) => vec![],
            Err(SettingsError(errs)) => errs.iter().map(|e| e.field).collect(),
        }
    }

    #[test]
    fn defaults_are_valid_and_match_the_spec() {
        let s = IntegrationSettings::default();
        assert_eq!(fields(&s), Vec::<&str>::new());
        // R6 default notification events.
        assert_eq!(s.notify_on, default_notify_on());
        assert!(!s.notify_on.contains(&EventKind::TranscriptionCompleted));
        assert_eq!(s.placeholder_account, "CallConnect 取引先");
        assert_eq!(s.import_window_days, 365);
        assert_eq!(s.api_budget_percent, 20);
    }

    #[test]
    fn r1_at_least_one_sync_target() {
        let s = IntegrationSettings {
            sync_targets: SyncTargets {
                lead: false,
                contact: false,
            },
            ..Default::default()
        };
        assert_eq!(fields(&s), vec!["sync_targets"]);
    }

    #[test]
    fn r3_r4_create_as_required_and_within_targets() {
        let cases = [
            (SyncTargets::BOTH, true, None, vec!["create_as"]),
            (
                SyncTargets {
                    lead: true,
                    contact: false,
                },
                true,
                Some(SfObject::Contact),
                vec!["create_as"],
            ),
            (
                SyncTargets {
                    lead: true,
                    contact: false,
                },
                true,
                Some(SfObject::Lead),
                vec![],
            ),
            (SyncTargets::BOTH, false, None, vec![]),
            (
                SyncTargets {
                    lead: false,
                    contact: true,
                },
                false,
                Some(SfObject::Lead),
                vec![],
            ),
        ];
        for (targets, create, create_as, expected) in cases {
            let s = IntegrationSettings {
                sync_targets: targets,
                create_customers: create,
                create_as,
                ..Default::default()
            };
            assert_eq!(fields(&s), expected, "{targets:?} {create} {create_as:?}");
        }
    }

    #[test]
    fn r2_r5_r6_options_round_trip_through_json() {
        let s = IntegrationSettings {
            write_activity: false,
            write_transcription: true,
            notify_on: [EventKind::Missed].into_iter().collect(),
            ..Default::default()
        };
        let back: IntegrationSettings =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        // Missing keys take defaults, so old stored settings keep working.
        let partial: IntegrationSettings =
            serde_json::from_str(r#"{"write_activity":false}"#).unwrap();
        assert!(!partial.write_activity);
        assert_eq!(partial.notify_on, default_notify_on());
    }

    #[test]
    fn every_error_names_its_field_in_both_languages() {
        let s = IntegrationSettings {
            sync_targets: SyncTargets {
                lead: false,
                contact: false,
            },
            create_customers: true,
            time_zone: "Mars/Olympus".into(),
            placeholder_account: " ".into(),
            import_window_days: 0,
            import_cap: Some(0),
            api_budget_percent: 0,
            ..Default::default()
        };
        let err = s.validate().unwrap_err();
        let names: Vec<_> = err.0.iter().map(|e| e.field).collect();
        assert_eq!(
            names,
            vec![
                "sync_targets",
                "create_as",
                "time_zone",
                "placeholder_account",
                "import_window_days",
                "import_cap",
                "api_budget_percent"
            ]
        );
        assert!(
            err.0
                .iter()
                .all(|e| !e.message_ja.is_empty() && !e.message.is_empty())
        );
        assert!(err.to_string().contains("create_as"));
    }
}
