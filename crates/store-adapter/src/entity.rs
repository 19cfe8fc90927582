//! sea-orm entities: one module per table, mirroring the migration. Private to the crate —
//! table and column names never leave it; `convert` turns rows into domain types.

// The derive macros generate `pub` items (and relation enums this schema does not use).
#![allow(unreachable_pub, dead_code)]

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod tenant {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub created_at: DateTimeUtc,
        pub webhook_secret: Option<Vec<u8>>,
        pub webhook_key_id: Option<String>,
        pub admin_token_hash: Option<String>,
    }
    no_relations!();
}

pub mod settings {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "integration_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        pub settings: String,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod credential {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "credentials")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        pub instance_url: String,
        pub access_token: Vec<u8>,
        pub access_key_id: String,
        pub refresh_token: Vec<u8>,
        pub refresh_key_id: String,
        pub connected_user: String,
        pub issued_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
    impl std::fmt::Debug for Model {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("credential::Model")
                .field("tenant_id", &self.tenant_id)
                .finish_non_exhaustive()
        }
    }
    no_relations!();
}

pub mod member {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "members")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: String,
        pub external_id: String,
        pub name: Option<String>,
        pub email: Option<String>,
        pub email_lower: Option<String>,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod customer {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "customers")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: String,
        pub e164: String,
        pub raw_number: String,
        pub name: Option<String>,
        pub company: Option<String>,
        pub email: Option<String>,
        pub address: Option<String>,
        pub memo: Option<String>,
        pub record_object: Option<String>,
        pub record_id: Option<String>,
        pub system_modstamp: Option<DateTimeUtc>,
        /// JSON array of `SyncedField`.
        pub dirty: String,
        pub edited_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod duplicate {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "duplicates")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: String,
        pub number: String,
        pub record_object: String,
        pub record_id: String,
        pub winner_object: String,
        pub winner_id: String,
        pub system_modstamp: DateTimeUtc,
        pub recorded_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod call_event {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "call_events")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: String,
        pub call_id: String,
        pub event: String,
        pub content_type: String,
        pub raw_body: Vec<u8>,
        /// JSON of `CallEvent`.
        pub parsed: String,
        pub received_at: DateTimeUtc,
        pub request_id: Option<String>,
        /// JSON of `EventOutcome`.
        pub outcome: Option<String>,
        pub outcome_at: Option<DateTimeUtc>,
    }
    no_relations!();
}

pub mod work_item {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "work_items")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: String,
        /// JSON of `WorkKind`.
        pub kind: String,
        pub state: String,
        pub attempts: i32,
        pub due_at: DateTimeUtc,
        pub lease_token: Option<String>,
        pub leased_by: Option<String>,
        pub lease_expires_at: Option<DateTimeUtc>,
        pub hold_reason: Option<String>,
        /// JSON of `Failure`.
        pub last_failure: Option<String>,
        pub failed_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod call_task {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "call_tasks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub call_id: String,
        pub task_id: String,
        pub who_object: String,
        pub who_id: String,
        pub owner_id: Option<String>,
        pub description: String,
        /// JSON array of Salesforce ids.
        pub continuations: String,
        pub updated_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod sync_run {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sync_runs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: String,
        pub kind: String,
        pub started_at: DateTimeUtc,
        pub finished_at: Option<DateTimeUtc>,
        pub ok: Option<bool>,
        /// JSON of `SyncReport`.
        pub report: String,
    }
    no_relations!();
}

pub mod watermark {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "watermarks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub object: String,
        pub at: DateTimeUtc,
    }
    no_relations!();
}

pub mod sf_user {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sf_users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub name: String,
        pub email: Option<String>,
        pub email_lower: Option<String>,
        pub active: bool,
    }
    no_relations!();
}

pub mod lock {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "locks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub lock_key: String,
        pub holder: String,
        pub expires_at: DateTimeUtc,
    }
    no_relations!();
}

pub mod audit {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub tenant_id: String,
        pub actor: String,
        pub action: String,
        /// JSON.
        pub detail: String,
        pub at: DateTimeUtc,
    }
    no_relations!();
}
