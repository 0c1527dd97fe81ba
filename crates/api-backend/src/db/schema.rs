diesel::table! {
    idempotency_records (location_id, idem_key) {
        location_id -> Text,
        idem_key -> Text,
        request_hash -> Text,
        state -> Text,
        status -> Nullable<Integer>,
        response -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        owner -> Nullable<Text>,
        lease_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    payment_providers (location_id) {
        location_id -> Text,
        installation_id -> Text,
        name -> Text,
        description -> Text,
        image_url -> Text,
        gateway -> Text,
        gateway_credentials -> Nullable<Text>,
        api_key_salt -> Text,
        test_api_key_hash -> Text,
        live_api_key_hash -> Text,
        test_publishable_key -> Text,
        live_publishable_key -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        marketplace_app_id -> Nullable<Text>,
        paytr_direct_api -> Bool,
    }
}

diesel::table! {
    payment_charges (id) {
        id -> Text,
        location_id -> Text,
        live_mode -> Bool,
        transaction_id -> Text,
        gateway -> Text,
        gateway_ref -> Nullable<Text>,
        status -> Text,
        amount_minor -> BigInt,
        currency -> Text,
        refunded_minor -> BigInt,
        contact_id -> Nullable<Text>,
        payment_method_id -> Nullable<Text>,
        subscription_id -> Nullable<Text>,
        description -> Nullable<Text>,
        failure -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    payment_refunds (id) {
        id -> Text,
        charge_id -> Text,
        location_id -> Text,
        amount_minor -> BigInt,
        created_at -> BigInt,
        status -> Text,
        request_key -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    payment_subscriptions (id) {
        id -> Text,
        location_id -> Text,
        live_mode -> Bool,
        transaction_id -> Text,
        contact_id -> Nullable<Text>,
        payment_method_id -> Text,
        amount_minor -> BigInt,
        currency -> Text,
        interval_unit -> Text,
        interval_count -> Integer,
        status -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        ghl_subscription_id -> Nullable<Text>,
        first_amount_minor -> Nullable<BigInt>,
        trial_end -> Nullable<BigInt>,
        total_cycles -> Nullable<Integer>,
        cycles_paid -> Integer,
        next_charge_at -> Nullable<BigInt>,
        attempt_at -> Nullable<BigInt>,
        failed_attempts -> Integer,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    payment_methods (id) {
        id -> Text,
        location_id -> Text,
        live_mode -> Bool,
        contact_id -> Text,
        brand -> Text,
        last4 -> Text,
        exp_month -> Integer,
        exp_year -> Integer,
        sandbox_outcome -> Nullable<Text>,
        created_at -> BigInt,
        gateway_ref -> Nullable<Text>,
    }
}

diesel::table! {
    paytr_customers (location_id, live_mode, contact_id) {
        location_id -> Text,
        live_mode -> Bool,
        contact_id -> Text,
        utoken_sealed -> Nullable<Text>,
        user_ip -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    payment_events (id) {
        id -> Text,
        location_id -> Text,
        live_mode -> Bool,
        event_type -> Text,
        payload -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        delivered_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        subject -> Nullable<Text>,
    }
}

diesel::table! {
    paytr_subscription_checkouts (charge_id) {
        charge_id -> Text,
        location_id -> Text,
        live_mode -> Bool,
        transaction_id -> Text,
        ghl_subscription_id -> Text,
        subscription_id -> Text,
        contact_id -> Text,
        terms -> Text,
        known_cards -> Text,
        status -> Text,
        failure -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::joinable!(payment_refunds -> payment_charges (charge_id));
diesel::allow_tables_to_appear_in_same_query!(payment_charges, payment_refunds);
