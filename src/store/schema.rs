//! The diesel schema, matching `migrations/`.

diesel::table! {
    provider_keys (id) {
        id -> BigInt,
        platform -> Text,
        label -> Text,
        ciphertext -> Binary,
        nonce -> Binary,
        key_hint -> Text,
        base_url -> Nullable<Text>,
        models -> Nullable<Text>,
        status -> Text,
        last_error -> Nullable<Text>,
        last_checked_at -> Nullable<BigInt>,
        enabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    aliases (name) {
        name -> Text,
        position -> BigInt,
        targets -> Text,
    }
}

diesel::table! {
    fallback_chain (position) {
        position -> BigInt,
        platform -> Text,
        model -> Text,
        enabled -> Bool,
    }
}

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    request_log (id) {
        id -> BigInt,
        ts -> BigInt,
        requested_model -> Text,
        platform -> Nullable<Text>,
        model -> Nullable<Text>,
        status -> Integer,
        latency_ms -> Integer,
        prompt_tokens -> Integer,
        completion_tokens -> Integer,
        attempts -> Integer,
        stream -> Bool,
        error -> Nullable<Text>,
        attempt_log -> Nullable<Text>,
        client -> Nullable<Text>,
        cached -> Bool,
    }
}

diesel::table! {
    request_rollup (hour, platform, model) {
        hour -> BigInt,
        platform -> Text,
        model -> Text,
        requests -> BigInt,
        successes -> BigInt,
        prompt_tokens -> BigInt,
        completion_tokens -> BigInt,
        latency_sum -> BigInt,
        latency_histogram -> Text,
    }
}

diesel::table! {
    budget_state (platform, model, key_id) {
        platform -> Text,
        model -> Text,
        key_id -> BigInt,
        day -> BigInt,
        day_requests -> BigInt,
        day_tokens -> BigInt,
        cooldown_until_ms -> Nullable<BigInt>,
        cooldown_outage -> Bool,
        detail -> Text,
    }
}

diesel::table! {
    stored_responses (id) {
        id -> Text,
        created_ms -> BigInt,
        previous_id -> Nullable<Text>,
        input -> Text,
        response -> Text,
    }
}

diesel::table! {
    clients (id) {
        id -> BigInt,
        name -> Text,
        key_hash -> Text,
        masked -> Text,
        models -> Nullable<Text>,
        rpm -> Nullable<BigInt>,
        rpd -> Nullable<BigInt>,
        tpm -> Nullable<BigInt>,
        tpd -> Nullable<BigInt>,
        enabled -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    client_usage (client_id) {
        client_id -> BigInt,
        minute_start -> BigInt,
        minute_requests -> BigInt,
        minute_tokens -> BigInt,
        day_start -> BigInt,
        day_requests -> BigInt,
        day_tokens -> BigInt,
    }
}
