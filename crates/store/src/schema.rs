//! One backend-neutral schema for both dialects: only types diesel's multi-backend supports
//! (times are RFC 3339 text, flags booleans, the sealed session key binary).

diesel::table! {
    organizations (name) {
        name -> Text,
        owner -> Text,
        display_name -> Text,
        default_avatar -> Text,
        created_time -> Text,
        extra -> Text,
    }
}

diesel::table! {
    certs (name) {
        name -> Text,
        owner -> Text,
        display_name -> Text,
        cert_type -> Text,
        crypto_algorithm -> Text,
        bit_size -> Integer,
        certificate -> Text,
        private_key -> Text,
        created_time -> Text,
        extra -> Text,
    }
}

diesel::table! {
    providers (owner, name) {
        owner -> Text,
        name -> Text,
        display_name -> Text,
        category -> Text,
        provider_type -> Text,
        sub_type -> Text,
        client_id -> Text,
        client_secret -> Text,
        created_time -> Text,
        extra -> Text,
    }
}

diesel::table! {
    applications (name) {
        name -> Text,
        owner -> Text,
        display_name -> Text,
        organization -> Text,
        client_id -> Text,
        client_secret -> Text,
        cert -> Text,
        enable_sign_up -> Bool,
        providers -> Text,
        grant_types -> Text,
        token_format -> Text,
        expire_in_hours -> BigInt,
        refresh_expire_in_hours -> BigInt,
        max_sessions_per_user -> Integer,
        created_time -> Text,
        extra -> Text,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        owner -> Text,
        name -> Text,
        user_type -> Text,
        display_name -> Text,
        avatar -> Text,
        email -> Text,
        phone -> Text,
        country_code -> Text,
        phone_e164 -> Nullable<Text>,
        is_admin -> Bool,
        is_forbidden -> Bool,
        is_deleted -> Bool,
        signup_application -> Text,
        wechat -> Text,
        wechat_open_id -> Text,
        wechat_union_id -> Text,
        password_hash -> Nullable<Text>,
        first_name -> Text,
        last_name -> Text,
        bio -> Text,
        gender -> Text,
        language -> Text,
        location -> Text,
        region -> Text,
        homepage -> Text,
        title -> Text,
        affiliation -> Text,
        birthday -> Text,
        created_time -> Text,
        updated_time -> Text,
        last_signin_time -> Nullable<Text>,
        extra -> Text,
    }
}

diesel::table! {
    wechat_identities (appid, openid) {
        appid -> Text,
        openid -> Text,
        unionid -> Text,
        organization -> Text,
        user_id -> Text,
        created_time -> Text,
    }
}

diesel::table! {
    wechat_sessions (appid, openid) {
        appid -> Text,
        openid -> Text,
        sealed_key -> Binary,
        updated_time -> Text,
    }
}

diesel::table! {
    tokens (id) {
        id -> Text,
        application -> Text,
        organization -> Text,
        user_id -> Text,
        access_token_hash -> Text,
        refresh_token_hash -> Nullable<Text>,
        family -> Text,
        scope -> Text,
        token_type -> Text,
        expires_at -> Text,
        refresh_expires_at -> Nullable<Text>,
        created_time -> Text,
        revoked -> Bool,
        refresh_used -> Bool,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        organization -> Text,
        application -> Text,
        user_id -> Text,
        user_name -> Text,
        created_time -> Text,
        last_active_time -> Text,
        expires_time -> Text,
        client_ip -> Text,
        user_agent -> Text,
        revoked_time -> Nullable<Text>,
        revoked_reason -> Text,
    }
}

diesel::table! {
    refresh_tokens (hash) {
        hash -> Text,
        session_id -> Text,
        application -> Text,
        organization -> Text,
        user_id -> Text,
        scope -> Text,
        created_time -> Text,
        expires_time -> Text,
        used -> Bool,
    }
}

diesel::table! {
    revocations (seq) {
        seq -> BigInt,
        kind -> Text,
        subject -> Text,
        expires_time -> Text,
        created_time -> Text,
    }
}

diesel::joinable!(wechat_identities -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, wechat_identities);

diesel::table! {
    records (id) {
        id -> BigInt,
        name -> Text,
        created_time -> Text,
        organization -> Text,
        client_ip -> Text,
        user_name -> Text,
        user_id -> Text,
        method -> Text,
        request_uri -> Text,
        action -> Text,
        language -> Text,
        object -> Text,
        response -> Text,
        status_code -> Integer,
        errcode -> BigInt,
        detail -> Text,
        user_agent -> Text,
        is_triggered -> Bool,
        added_by -> Text,
    }
}

diesel::table! {
    record_rollups (organization, day, action, response, errcode) {
        organization -> Text,
        day -> Text,
        action -> Text,
        response -> Text,
        errcode -> BigInt,
        n -> BigInt,
    }
}

diesel::table! {
    rollup_days (day) {
        day -> Text,
        done_time -> Text,
    }
}

diesel::table! {
    password_failures (user_id) {
        user_id -> Text,
        wrong_times -> Integer,
        last_wrong_time -> Text,
    }
}
