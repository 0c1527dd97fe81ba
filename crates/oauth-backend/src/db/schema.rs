// Tables as the migrations in migrations/oauth-backend/ create them (same shape on both backends).

diesel::table! {
    installations (id) {
        id -> Text,
        install_key -> Text,
        auth_class -> Text,
        company_id -> Text,
        location_id -> Nullable<Text>,
        app_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
        scopes -> Text,
        is_bulk -> Bool,
        approved_locations -> Text,
        state -> Text,
        last_refresh_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        plan_id -> Nullable<Text>,
        plan_changed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    tokens (installation_id, scope_key) {
        installation_id -> Text,
        scope_key -> Text,
        access_token_enc -> Nullable<Text>,
        refresh_token_enc -> Nullable<Text>,
        access_token_hash -> Nullable<Text>,
        expires_at -> Nullable<BigInt>,
        token_version -> BigInt,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    oauth_states (id) {
        id -> Text,
        user_type -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webhook_events (webhook_id) {
        webhook_id -> Text,
        event_type -> Text,
        received_at -> BigInt,
    }
}

diesel::table! {
    token_audit (id) {
        id -> BigInt,
        caller -> Text,
        installation_id -> Text,
        location_id -> Nullable<Text>,
        outcome -> Text,
        at -> BigInt,
        count -> BigInt,
    }
}

diesel::joinable!(tokens -> installations (installation_id));
diesel::allow_tables_to_appear_in_same_query!(installations, tokens);

diesel::table! {
    installation_changes (seq) {
        seq -> BigInt,
        installation_id -> Text,
        scope_key -> Nullable<Text>,
        state -> Nullable<Text>,
        token_version -> Nullable<BigInt>,
        changed_at -> BigInt,
    }
}

diesel::table! {
    oauth_used_states (id) {
        id -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        event_id -> Text,
        webhook_id -> Text,
        event_type -> Text,
        url -> Text,
        installation_id -> Nullable<Text>,
        location_id -> Nullable<Text>,
        company_id -> Nullable<Text>,
        payload -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        retry_from -> BigInt,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        occurred_at -> BigInt,
        created_at -> BigInt,
        delivered_at -> Nullable<BigInt>,
        updated_at -> BigInt,
    }
}
