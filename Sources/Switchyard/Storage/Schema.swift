/// Every table, in the order it was introduced. Never edit a released migration: add one.
/// Times are BIGINT milliseconds since 1970 and booleans BIGINT 0/1 on both engines.
public enum Schema {
    public static let all: [Migration] = [
        Migration(
            1,
            "identity",
            [
                """
                CREATE TABLE organizations (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE workspaces (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL, mode TEXT NOT NULL,
                    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
                    password_hash TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                "CREATE UNIQUE INDEX users_email ON users (email)",
                """
                CREATE TABLE api_tokens (
                    id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users (id), name TEXT NOT NULL,
                    mode TEXT NOT NULL, display_prefix TEXT NOT NULL, last_four TEXT NOT NULL,
                    secret_hash TEXT NOT NULL, workspace_ids TEXT, expires_at BIGINT, last_used_at BIGINT,
                    revoked_at BIGINT, created_at BIGINT NOT NULL)
                """,
                "CREATE UNIQUE INDEX api_tokens_secret_hash ON api_tokens (secret_hash)",
                "CREATE INDEX api_tokens_user ON api_tokens (user_id, id)",
                """
                CREATE TABLE sessions (
                    id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users (id),
                    secret_hash TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)
                """,
                "CREATE UNIQUE INDEX sessions_secret_hash ON sessions (secret_hash)",
            ]
        ),
        Migration(
            2,
            "mail and activity",
            [
                """
                CREATE TABLE mail_messages (
                    id TEXT PRIMARY KEY, recipient TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL,
                    status TEXT NOT NULL, attempts BIGINT NOT NULL, next_attempt_at BIGINT NOT NULL,
                    locked_until BIGINT, last_error TEXT, created_at BIGINT NOT NULL, sent_at BIGINT)
                """,
                "CREATE INDEX mail_messages_due ON mail_messages (status, next_attempt_at)",
                """
                CREATE TABLE activity_entries (
                    id TEXT PRIMARY KEY, occurred_at BIGINT NOT NULL, actor_type TEXT NOT NULL, actor_id TEXT,
                    actor_label TEXT, action TEXT NOT NULL, target_type TEXT, target_id TEXT,
                    workspace_id TEXT, app_id TEXT, ip TEXT, outcome TEXT NOT NULL, detail TEXT,
                    request_id TEXT)
                """,
                "CREATE INDEX activity_entries_action ON activity_entries (action, id)",
                "CREATE INDEX activity_entries_workspace ON activity_entries (workspace_id, id)",
            ]
        ),
        Migration(
            3,
            "objects and events",
            [
                """
                CREATE TABLE object_types (
                    id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL REFERENCES workspaces (id), key TEXT NOT NULL,
                    name TEXT NOT NULL, description TEXT, fields TEXT NOT NULL, locked BIGINT NOT NULL,
                    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                "CREATE UNIQUE INDEX object_types_key ON object_types (workspace_id, key)",
                """
                CREATE TABLE records (
                    id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, object_type_id TEXT NOT NULL REFERENCES object_types (id),
                    data TEXT NOT NULL, version BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
                    created_by_type TEXT NOT NULL, created_by_id TEXT)
                """,
                "CREATE INDEX records_type ON records (object_type_id, id)",
                """
                CREATE TABLE record_unique_values (
                    object_type_id TEXT NOT NULL, field_key TEXT NOT NULL, value TEXT NOT NULL, record_id TEXT NOT NULL,
                    PRIMARY KEY (object_type_id, field_key, value))
                """,
                "CREATE INDEX record_unique_values_record ON record_unique_values (record_id)",
                """
                CREATE TABLE events (
                    id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, type TEXT NOT NULL, object_type TEXT, record_id TEXT,
                    data TEXT NOT NULL, changed_fields TEXT, actor_type TEXT NOT NULL, actor_id TEXT,
                    created_by_type TEXT, created_by_id TEXT, occurred_at BIGINT NOT NULL)
                """,
                "CREATE INDEX events_workspace ON events (workspace_id, id)",
                "CREATE INDEX events_workspace_type ON events (workspace_id, type, id)",
                """
                CREATE TABLE idempotency_keys (
                    workspace_id TEXT NOT NULL, scope TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL,
                    status BIGINT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL,
                    PRIMARY KEY (workspace_id, scope, key))
                """,
            ]
        ),
        Migration(
            4,
            "the organization",
            [
                // One organization per installation, made with the schema so that every process (and
                // the command line, before any server ran) finds the same one.
                """
                INSERT INTO organizations (id, name, created_at)
                SELECT 'org_00000000000000000000000000', 'My organization', 0
                WHERE NOT EXISTS (SELECT 1 FROM organizations)
                """
            ]
        ),
        Migration(
            5,
            "housekeeping indexes",
            [
                "CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)",
                "CREATE INDEX sessions_expires ON sessions (expires_at)",
            ]
        ),
        Migration(
            6,
            "event positions",
            [
                // The order events are read in: the writing transaction's id on PostgreSQL (see
                // SQLDialect.eventPosition), 0 on SQLite, where ids already follow commit order.
                "ALTER TABLE events ADD COLUMN position BIGINT NOT NULL DEFAULT 0",
                "CREATE INDEX events_workspace_position ON events (workspace_id, position, id)",
            ]
        ),
        Migration(
            7,
            "worker leases",
            [
                // Every job table names its lease `leased_until`, so one claim (SQLTx.claimDue)
                // serves them all.
                "ALTER TABLE mail_messages RENAME COLUMN locked_until TO leased_until",
                """
                CREATE TABLE periodic_jobs (
                    id TEXT PRIMARY KEY, next_attempt_at BIGINT NOT NULL, leased_until BIGINT,
                    last_run_at BIGINT, last_error TEXT)
                """,
            ]
        ),
        Migration(
            8,
            "object types being deleted",
            [
                // 1 while a forced delete removes the type's records in batches: the type is gone
                // for every other request, and a repeated delete finishes the job after a crash.
                "ALTER TABLE object_types ADD COLUMN deleting BIGINT NOT NULL DEFAULT 0"
            ]
        ),
        Migration(
            9,
            "webhooks",
            [
                // Secrets (the signing secret, the previous one during a rotation, secret headers)
                // are sealed with the installation's key (App/Sealer.swift); subscriptions, alert
                // emails and headers are JSON text.
                """
                CREATE TABLE webhook_endpoints (
                    id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, name TEXT, description TEXT, url TEXT NOT NULL,
                    status TEXT NOT NULL, subscriptions TEXT NOT NULL, alert_emails TEXT NOT NULL, headers TEXT NOT NULL,
                    secret_headers {blob}, secret_header_names TEXT NOT NULL, rate_limit BIGINT, ordering TEXT,
                    secret {blob} NOT NULL, previous_secret {blob}, previous_secret_until BIGINT,
                    disabled_at BIGINT, disabled_reason TEXT, failing_since BIGINT,
                    exhausted_in_a_row BIGINT NOT NULL DEFAULT 0, last_error TEXT,
                    created_by_type TEXT, created_by_id TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                "CREATE INDEX webhook_endpoints_workspace ON webhook_endpoints (workspace_id, id)",
                // One row per event and endpoint (the unique index makes fan-out idempotent). A
                // pending delivery is due at next_attempt_at; NULL while a FIFO endpoint's earlier
                // delivery is still under way. `round_attempts` counts the attempts since the schedule
                // last started (a manual retry or `recover` starts it again); `attempts` all of them.
                """
                CREATE TABLE webhook_deliveries (
                    id TEXT PRIMARY KEY, endpoint_id TEXT NOT NULL, workspace_id TEXT NOT NULL, event_id TEXT NOT NULL,
                    event_type TEXT NOT NULL, event_position BIGINT NOT NULL, status TEXT NOT NULL,
                    attempts BIGINT NOT NULL DEFAULT 0, round_attempts BIGINT NOT NULL DEFAULT 0,
                    next_attempt_at BIGINT, leased_until BIGINT,
                    last_status BIGINT, last_error TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
                    finished_at BIGINT)
                """,
                "CREATE UNIQUE INDEX webhook_deliveries_endpoint_event ON webhook_deliveries (endpoint_id, event_id)",
                "CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id)",
                "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending'",
                "CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id)",
                """
                CREATE TABLE webhook_attempts (
                    id TEXT PRIMARY KEY, delivery_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, number BIGINT NOT NULL,
                    url TEXT NOT NULL, request_headers TEXT NOT NULL, request_body TEXT NOT NULL, response_status BIGINT,
                    response_headers TEXT, response_body TEXT, duration_ms DOUBLE PRECISION NOT NULL, error TEXT,
                    attempted_at BIGINT NOT NULL)
                """,
                "CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, number)",
                // Where fan-out stands in the event log (one row, id 'events'): the position and id of
                // the last event it turned into deliveries.
                "CREATE TABLE webhook_fanout (id TEXT PRIMARY KEY, after_position BIGINT NOT NULL, after_id TEXT NOT NULL)",
                "CREATE INDEX events_position ON events (position, id)",
            ]
        ),
        Migration(
            10,
            "host event types",
            [
                // The host event types each workspace has posted, for the event type catalog: the
                // log may have dropped their events (event retention), and scanning it would be slow.
                """
                CREATE TABLE host_event_types (
                    workspace_id TEXT NOT NULL, type TEXT NOT NULL, first_posted_at BIGINT NOT NULL,
                    PRIMARY KEY (workspace_id, type))
                """
            ]
        ),
        Migration(
            11,
            "apps and the user lifecycle",
            [
                // A user without a password yet (invited) has password_hash ''; bcrypt never matches it.
                "ALTER TABLE users ADD COLUMN deactivated_at BIGINT",
                // `console` or `portal`: a portal session never opens the console, nor the other way.
                "ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'console'",
                // What an entry touched, as it was called then, so an exported log reads without lookups.
                "ALTER TABLE activity_entries ADD COLUMN target_label TEXT",
                "ALTER TABLE activity_entries ADD COLUMN workspace_name TEXT",
                "CREATE INDEX activity_entries_app ON activity_entries (app_id, id)",
                "CREATE INDEX activity_entries_target ON activity_entries (target_id, id)",
                // `workspace_ids` is a JSON array, NULL for every workspace of the app's mode ("*");
                // `permissions` a JSON array. The one-time password is kept as SHA-256 only.
                """
                CREATE TABLE apps (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL, description TEXT NOT NULL,
                    category TEXT NOT NULL, access TEXT NOT NULL, mode TEXT NOT NULL, workspace_ids TEXT,
                    permissions TEXT NOT NULL, status TEXT NOT NULL, client_id TEXT NOT NULL, rate_limit DOUBLE PRECISION,
                    developer_email TEXT, developer_user_id TEXT, developer_invited_at BIGINT, developer_linked_at BIGINT,
                    verified_at BIGINT, otp_hash TEXT, otp_expires_at BIGINT, otp_failures BIGINT NOT NULL DEFAULT 0,
                    created_by_type TEXT, created_by_id TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
                    revoked_at BIGINT)
                """,
                "CREATE UNIQUE INDEX apps_name_key ON apps (name_key)",
                "CREATE UNIQUE INDEX apps_client_id ON apps (client_id)",
                "CREATE INDEX apps_developer ON apps (developer_user_id)",
                """
                CREATE TABLE app_secrets (
                    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, secret_hash TEXT NOT NULL, last_four TEXT NOT NULL,
                    created_at BIGINT NOT NULL, last_used_at BIGINT, deleted_at BIGINT)
                """,
                "CREATE UNIQUE INDEX app_secrets_hash ON app_secrets (secret_hash)",
                "CREATE INDEX app_secrets_app ON app_secrets (app_id, id)",
                // `scope`: the JSON array of permissions a token request narrowed to; NULL is all the
                // app holds (read anew from the app on every call).
                """
                CREATE TABLE app_tokens (
                    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, secret_id TEXT NOT NULL, secret_hash TEXT NOT NULL,
                    mode TEXT NOT NULL, scope TEXT, expires_at BIGINT NOT NULL, revoked_at BIGINT, created_at BIGINT NOT NULL)
                """,
                "CREATE UNIQUE INDEX app_tokens_hash ON app_tokens (secret_hash)",
                "CREATE INDEX app_tokens_app ON app_tokens (app_id, id)",
                // Links mailed to people: `user` (set a first password), `developer` (join the portal
                // for an app), `password_reset`. Stored as SHA-256; used or revoked ones stay, refused.
                """
                CREATE TABLE invites (
                    id TEXT PRIMARY KEY, kind TEXT NOT NULL, email TEXT NOT NULL, user_id TEXT, app_id TEXT,
                    token_hash TEXT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT, revoked_at BIGINT,
                    created_at BIGINT NOT NULL)
                """,
                "CREATE UNIQUE INDEX invites_token_hash ON invites (token_hash)",
                "CREATE INDEX invites_app ON invites (app_id)",
                "CREATE INDEX invites_user ON invites (user_id)",
                // The shared token bucket of each app's API calls, which processes lease shares of.
                """
                CREATE TABLE app_rate_buckets (
                    app_id TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL, updated_at BIGINT NOT NULL)
                """,
            ]
        ),
        Migration(
            12,
            "integrations",
            [
                // `configuration` and `auth` are JSON without secrets; the secret configuration and the
                // auth spec's client secret are sealed JSON objects (App/Sealer.swift), never shown.
                """
                CREATE TABLE integrations (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL, description TEXT NOT NULL,
                    configuration TEXT NOT NULL, secret_configuration {blob}, secret_configuration_keys TEXT NOT NULL,
                    auth_type TEXT NOT NULL, auth TEXT NOT NULL, auth_secrets {blob},
                    created_by_type TEXT, created_by_id TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                "CREATE UNIQUE INDEX integrations_name_key ON integrations (name_key)",
                // `inputs` and `outputs` are JSON arrays of parameters; `position` keeps the order given.
                """
                CREATE TABLE connectors (
                    integration_id TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
                    inputs TEXT NOT NULL, outputs TEXT NOT NULL, code TEXT NOT NULL, position BIGINT NOT NULL,
                    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
                    PRIMARY KEY (integration_id, key))
                """,
                // One per integration and workspace. `secrets` is the sealed JSON of the credentials
                // (API key, basic, custom) or the tokens (OAuth 2.0); `refresh_lease_*` is the lock that
                // lets one process at a time refresh, across processes.
                """
                CREATE TABLE connections (
                    id TEXT PRIMARY KEY, integration_id TEXT NOT NULL, workspace_id TEXT NOT NULL, status TEXT NOT NULL,
                    secrets {blob}, scopes TEXT, expires_at BIGINT, last_authorized_at BIGINT, last_refreshed_at BIGINT,
                    refresh_failures BIGINT NOT NULL DEFAULT 0, refresh_not_before BIGINT,
                    refresh_lease_until BIGINT, refresh_lease_id TEXT, last_error TEXT, last_error_at BIGINT,
                    created_by_type TEXT, created_by_id TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
                """,
                "CREATE UNIQUE INDEX connections_integration_workspace ON connections (integration_id, workspace_id)",
                "CREATE INDEX connections_workspace ON connections (workspace_id, id)",
                // The refresher's scan: active connections by when their token expires.
                "CREATE INDEX connections_expiry ON connections (status, expires_at)",
                // An Authorize flow under way: the state is kept as SHA-256, works once, for 10 minutes;
                // the PKCE verifier is sealed.
                """
                CREATE TABLE authorize_states (
                    state_hash TEXT PRIMARY KEY, connection_id TEXT NOT NULL, integration_id TEXT NOT NULL,
                    workspace_id TEXT NOT NULL, code_verifier {blob}, expires_at BIGINT NOT NULL, used_at BIGINT,
                    created_by_type TEXT, created_by_id TEXT, created_at BIGINT NOT NULL)
                """,
                // Test runs (kind `test`) and connector runs (kind `run`) with what the user inspects:
                // input, output, logs, HTTP calls (secrets already redacted) and the error, as JSON.
                """
                CREATE TABLE script_runs (
                    id TEXT PRIMARY KEY, kind TEXT NOT NULL, integration_id TEXT NOT NULL, connection_id TEXT,
                    workspace_id TEXT, target TEXT NOT NULL, status TEXT NOT NULL, input TEXT NOT NULL, output TEXT,
                    logs TEXT NOT NULL, auth_logs TEXT NOT NULL, http_calls TEXT NOT NULL, error TEXT,
                    duration_ms DOUBLE PRECISION NOT NULL, created_by_type TEXT, created_by_id TEXT,
                    created_at BIGINT NOT NULL)
                """,
                "CREATE INDEX script_runs_integration ON script_runs (integration_id, kind, id)",
                "CREATE INDEX script_runs_connection ON script_runs (connection_id, id)",
                // A webhook endpoint's transformation: JS `transform(webhook)` run before signing.
                "ALTER TABLE webhook_endpoints ADD COLUMN transformation TEXT",
            ]
        ),
        Migration(
            13,
            "activity entries without a target",
            [
                // Most entries name no target (every call of an app is an `app.request` entry): they
                // need no row in the target index, which was about a tenth of an entry's insert on
                // SQLite (6.0 → 5.6 µs a row, 200 rows a statement).
                "DROP INDEX activity_entries_target",
                "CREATE INDEX activity_entries_target ON activity_entries (target_id, id) WHERE target_id IS NOT NULL",
            ]
        ),
    ]
}
