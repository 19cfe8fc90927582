//! The initial schema: tenants and everything they own.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Name,
    CreatedAt,
    WebhookSecret,
    WebhookKeyId,
    AdminTokenHash,
}

#[derive(DeriveIden)]
enum IntegrationSettings {
    Table,
    TenantId,
    Settings,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Credentials {
    Table,
    TenantId,
    InstanceUrl,
    AccessToken,
    AccessKeyId,
    RefreshToken,
    RefreshKeyId,
    ConnectedUser,
    IssuedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Members {
    Table,
    Id,
    TenantId,
    ExternalId,
    Name,
    Email,
    EmailLower,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    Id,
    TenantId,
    E164,
    RawNumber,
    Name,
    Company,
    Email,
    Address,
    Memo,
    RecordObject,
    RecordId,
    SystemModstamp,
    Dirty,
    EditedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Duplicates {
    Table,
    Id,
    TenantId,
    Number,
    RecordObject,
    RecordId,
    WinnerObject,
    WinnerId,
    SystemModstamp,
    RecordedAt,
}

#[derive(DeriveIden)]
enum CallEvents {
    Table,
    Id,
    TenantId,
    CallId,
    Event,
    ContentType,
    RawBody,
    Parsed,
    ReceivedAt,
    RequestId,
    Outcome,
    OutcomeAt,
}

#[derive(DeriveIden)]
enum WorkItems {
    Table,
    Id,
    TenantId,
    Kind,
    State,
    Attempts,
    DueAt,
    LeaseToken,
    LeasedBy,
    LeaseExpiresAt,
    HoldReason,
    LastFailure,
    FailedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CallTasks {
    Table,
    TenantId,
    CallId,
    TaskId,
    WhoObject,
    WhoId,
    OwnerId,
    Description,
    Continuations,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SyncRuns {
    Table,
    Id,
    TenantId,
    Kind,
    StartedAt,
    FinishedAt,
    Ok,
    Report,
}

#[derive(DeriveIden)]
enum Watermarks {
    Table,
    TenantId,
    Object,
    At,
}

#[derive(DeriveIden)]
enum SfUsers {
    Table,
    TenantId,
    UserId,
    Name,
    Email,
    EmailLower,
    Active,
}

#[derive(DeriveIden)]
enum Locks {
    Table,
    TenantId,
    LockKey,
    Holder,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    TenantId,
    Actor,
    Action,
    Detail,
    At,
}

/// `tenant_id text not null references tenants(id) on delete cascade`.
fn tenant_fk<T: IntoIden + 'static>(t: &mut TableCreateStatement, table: T) {
    t.col(text(Alias::new("tenant_id"))).foreign_key(
        ForeignKey::create()
            .from(table, Alias::new("tenant_id"))
            .to(Tenants::Table, Tenants::Id)
            .on_delete(ForeignKeyAction::Cascade),
    );
}

fn index<T: IntoIden + 'static>(name: &str, table: T) -> IndexCreateStatement {
    Index::create()
        .name(name)
        .table(table)
        .if_not_exists()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Tenants::Table)
                .if_not_exists()
                .col(text(Tenants::Id).primary_key())
                .col(text(Tenants::Name))
                .col(timestamp_with_time_zone(Tenants::CreatedAt))
                .col(blob_null(Tenants::WebhookSecret))
                .col(text_null(Tenants::WebhookKeyId))
                .col(text_null(Tenants::AdminTokenHash))
                .to_owned(),
        )
        .await?;

        let mut t = Table::create()
            .table(IntegrationSettings::Table)
            .if_not_exists()
            .to_owned();
        tenant_fk(&mut t, IntegrationSettings::Table);
        t.col(text(IntegrationSettings::Settings))
            .col(timestamp_with_time_zone(IntegrationSettings::UpdatedAt))
            .primary_key(Index::create().col(IntegrationSettings::TenantId));
        m.create_table(t).await?;

        let mut t = Table::create()
            .table(Credentials::Table)
            .if_not_exists()
            .to_owned();
        tenant_fk(&mut t, Credentials::Table);
        t.col(text(Credentials::InstanceUrl))
            .col(blob(Credentials::AccessToken))
            .col(text(Credentials::AccessKeyId))
            .col(blob(Credentials::RefreshToken))
            .col(text(Credentials::RefreshKeyId))
            .col(text(Credentials::ConnectedUser))
            .col(timestamp_with_time_zone(Credentials::IssuedAt))
            .col(timestamp_with_time_zone(Credentials::UpdatedAt))
            .primary_key(Index::create().col(Credentials::TenantId));
        m.create_table(t).await?;

        let mut t = Table::create()
            .table(Members::Table)
            .if_not_exists()
            .to_owned();
        t.col(big_pk_auto(Members::Id));
        tenant_fk(&mut t, Members::Table);
        t.col(text(Members::ExternalId))
            .col(text_null(Members::Name))
            .col(text_null(Members::Email))
            .col(text_null(Members::EmailLower))
            .col(timestamp_with_time_zone(Members::UpdatedAt));
        m.create_table(t).await?;
        m.create_index(
            index("members_tenant_external", Members::Table)
                .col(Members::TenantId)
                .col(Members::ExternalId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("members_tenant_email_lower", Members::Table)
                .col(Members::TenantId)
                .col(Members::EmailLower)
                .to_owned(),
        )
        .await?;

        let mut t = Table::create()
            .table(Customers::Table)
            .if_not_exists()
            .to_owned();
        t.col(big_pk_auto(Customers::Id));
        tenant_fk(&mut t, Customers::Table);
        t.col(text(Customers::E164))
            .col(text(Customers::RawNumber))
            .col(text_null(Customers::Name))
            .col(text_null(Customers::Company))
            .col(text_null(Customers::Email))
            .col(text_null(Customers::Address))
            .col(text_null(Customers::Memo))
            .col(text_null(Customers::RecordObject))
            .col(text_null(Customers::RecordId))
            .col(timestamp_with_time_zone_null(Customers::SystemModstamp))
            .col(text(Customers::Dirty))
            .col(timestamp_with_time_zone_null(Customers::EditedAt))
            .col(timestamp_with_time_zone(Customers::CreatedAt))
            .col(timestamp_with_time_zone(Customers::UpdatedAt));
        m.create_table(t).await?;
        // R18: one customer per normalized number per tenant; also the caller-ID lookup index.
        m.create_index(
            index("customers_tenant_e164", Customers::Table)
                .col(Customers::TenantId)
                .col(Customers::E164)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("customers_tenant_record", Customers::Table)
                .col(Customers::TenantId)
                .col(Customers::RecordId)
                .to_owned(),
        )
        .await?;
        // R11 write-back finds dirty customers without scanning the book (partial index; the
        // predicate text must match the query's).
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS customers_tenant_dirty \
                 ON customers (tenant_id, edited_at) WHERE dirty <> '[]'",
            )
            .await?;

        let mut t = Table::create()
            .table(Duplicates::Table)
            .if_not_exists()
            .to_owned();
        t.col(big_pk_auto(Duplicates::Id));
        tenant_fk(&mut t, Duplicates::Table);
        t.col(text(Duplicates::Number))
            .col(text(Duplicates::RecordObject))
            .col(text(Duplicates::RecordId))
            .col(text(Duplicates::WinnerObject))
            .col(text(Duplicates::WinnerId))
            .col(timestamp_with_time_zone(Duplicates::SystemModstamp))
            .col(timestamp_with_time_zone(Duplicates::RecordedAt));
        m.create_table(t).await?;
        m.create_index(
            index("duplicates_tenant_record", Duplicates::Table)
                .col(Duplicates::TenantId)
                .col(Duplicates::RecordId)
                .unique()
                .to_owned(),
        )
        .await?;

        let mut t = Table::create()
            .table(CallEvents::Table)
            .if_not_exists()
            .to_owned();
        t.col(big_pk_auto(CallEvents::Id));
        tenant_fk(&mut t, CallEvents::Table);
        t.col(text(CallEvents::CallId))
            .col(text(CallEvents::Event))
            .col(text(CallEvents::ContentType))
            .col(blob(CallEvents::RawBody))
            .col(text(CallEvents::Parsed))
            .col(timestamp_with_time_zone(CallEvents::ReceivedAt))
            .col(text_null(CallEvents::RequestId))
            .col(text_null(CallEvents::Outcome))
            .col(timestamp_with_time_zone_null(CallEvents::OutcomeAt));
        m.create_table(t).await?;
        // The event's identity (R25, R27 "delivered twice").
        m.create_index(
            index("call_events_identity", CallEvents::Table)
                .col(CallEvents::TenantId)
                .col(CallEvents::CallId)
                .col(CallEvents::Event)
                .unique()
                .to_owned(),
        )
        .await?;

        let mut t = Table::create()
            .table(WorkItems::Table)
            .if_not_exists()
            .to_owned();
        t.col(big_pk_auto(WorkItems::Id));
        tenant_fk(&mut t, WorkItems::Table);
        t.col(text(WorkItems::Kind))
            .col(text(WorkItems::State))
            .col(integer(WorkItems::Attempts))
            .col(timestamp_with_time_zone(WorkItems::DueAt))
            .col(text_null(WorkItems::LeaseToken))
            .col(text_null(WorkItems::LeasedBy))
            .col(timestamp_with_time_zone_null(WorkItems::LeaseExpiresAt))
            .col(text_null(WorkItems::HoldReason))
            .col(text_null(WorkItems::LastFailure))
            .col(timestamp_with_time_zone_null(WorkItems::FailedAt))
            .col(timestamp_with_time_zone(WorkItems::CreatedAt))
            .col(timestamp_with_time_zone(WorkItems::UpdatedAt));
        m.create_table(t).await?;
        // The claim scans by (state, due_at); leases by (state, lease_expires_at).
        m.create_index(
            index("work_items_state_due", WorkItems::Table)
                .col(WorkItems::State)
                .col(WorkItems::DueAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("work_items_state_lease", WorkItems::Table)
                .col(WorkItems::State)
                .col(WorkItems::LeaseExpiresAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("work_items_tenant_state", WorkItems::Table)
                .col(WorkItems::TenantId)
                .col(WorkItems::State)
                .to_owned(),
        )
        .await?;

        let mut t = Table::create()
            .table(CallTasks::Table)
            .if_not_exists()
            .to_owned();
        tenant_fk(&mut t, CallTasks::Table);
        t.col(text(CallTasks::CallId))
            .col(text(CallTasks::TaskId))
            .col(text(CallTasks::WhoObject))
            .col(text(CallTasks::WhoId))
            .col(text_null(CallTasks::OwnerId))
            .col(text(CallTasks::Description))
            .col(text(CallTasks::Continuations))
            .col(timestamp_with_time_zone(CallTasks::UpdatedAt))
            .primary_key(
                Index::create()
                    .col(CallTasks::TenantId)
                    .col(CallTasks::CallId),
            );
        m.create_table(t).await?;

        let mut t = Table::create()
            .table(SyncRuns::Table)
            .if_not_exists()
            .to_owned();
        t.col(big_pk_auto(SyncRuns::Id));
        tenant_fk(&mut t, SyncRuns::Table);
        t.col(text(SyncRuns::Kind))
            .col(timestamp_with_time_zone(SyncRuns::StartedAt))
            .col(timestamp_with_time_zone_null(SyncRuns::FinishedAt))
            .col(boolean_null(SyncRuns::Ok))
            .col(text(SyncRuns::Report));
        m.create_table(t).await?;
        m.create_index(
            index("sync_runs_tenant_started", SyncRuns::Table)
                .col(SyncRuns::TenantId)
                .col(SyncRuns::StartedAt)
                .to_owned(),
        )
        .await?;

        let mut t = Table::create()
            .table(Watermarks::Table)
            .if_not_exists()
            .to_owned();
        tenant_fk(&mut t, Watermarks::Table);
        t.col(text(Watermarks::Object))
            .col(timestamp_with_time_zone(Watermarks::At))
            .primary_key(
                Index::create()
                    .col(Watermarks::TenantId)
                    .col(Watermarks::Object),
            );
        m.create_table(t).await?;

        let mut t = Table::create()
            .table(SfUsers::Table)
            .if_not_exists()
            .to_owned();
        tenant_fk(&mut t, SfUsers::Table);
        t.col(text(SfUsers::UserId))
            .col(text(SfUsers::Name))
            .col(text_null(SfUsers::Email))
            .col(text_null(SfUsers::EmailLower))
            .col(boolean(SfUsers::Active))
            .primary_key(Index::create().col(SfUsers::TenantId).col(SfUsers::UserId));
        m.create_table(t).await?;
        m.create_index(
            index("sf_users_tenant_email_lower", SfUsers::Table)
                .col(SfUsers::TenantId)
                .col(SfUsers::EmailLower)
                .to_owned(),
        )
        .await?;

        let mut t = Table::create()
            .table(Locks::Table)
            .if_not_exists()
            .to_owned();
        tenant_fk(&mut t, Locks::Table);
        t.col(text(Locks::LockKey))
            .col(text(Locks::Holder))
            .col(timestamp_with_time_zone(Locks::ExpiresAt))
            .primary_key(Index::create().col(Locks::TenantId).col(Locks::LockKey));
        m.create_table(t).await?;

        let mut t = Table::create()
            .table(AuditLog::Table)
            .if_not_exists()
            .to_owned();
        t.col(big_pk_auto(AuditLog::Id));
        tenant_fk(&mut t, AuditLog::Table);
        t.col(text(AuditLog::Actor))
            .col(text(AuditLog::Action))
            .col(text(AuditLog::Detail))
            .col(timestamp_with_time_zone(AuditLog::At));
        m.create_table(t).await?;
        m.create_index(
            index("audit_log_tenant_at", AuditLog::Table)
                .col(AuditLog::TenantId)
                .col(AuditLog::At)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "audit_log",
            "locks",
            "sf_users",
            "watermarks",
            "sync_runs",
            "call_tasks",
            "work_items",
            "call_events",
            "duplicates",
            "customers",
            "members",
            "credentials",
            "integration_settings",
            "tenants",
        ] {
            m.drop_table(Table::drop().table(Alias::new(t)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
