//! Built-in objects that exist on every server (SPEC §6).

use chrono::{DateTime, Utc};

use crate::Secret;
use crate::model::{
    Application, BUILT_IN_APP, BUILT_IN_CERT, BUILT_IN_ORG, Organization, Profile, User,
};

pub fn built_in_organization(now: DateTime<Utc>) -> Organization {
    Organization {
        name: BUILT_IN_ORG.into(),
        display_name: "Built-in Organization".into(),
        default_avatar: String::new(),
        created_time: now,
    }
}

/// The application of the built-in organization; its client credentials act as a global
/// administrator for the management API.
pub fn built_in_application(
    client_id: String,
    client_secret: Secret,
    now: DateTime<Utc>,
) -> Application {
    Application {
        name: BUILT_IN_APP.into(),
        display_name: "App Built-in".into(),
        organization: BUILT_IN_ORG.into(),
        client_id,
        client_secret,
        cert: BUILT_IN_CERT.into(),
        enable_sign_up: false,
        providers: Vec::new(),
        grant_types: vec![
            "password".into(),
            "client_credentials".into(),
            "refresh_token".into(),
        ],
        token_format: "JWT".into(),
        expire_in_hours: Application::DEFAULT_EXPIRE_IN_HOURS,
        refresh_expire_in_hours: Application::DEFAULT_REFRESH_EXPIRE_IN_HOURS,
        created_time: now,
    }
}

/// `built-in/admin`, a global administrator. The password hash is made by the caller (the
/// hashing crate is an adapter concern).
pub fn built_in_admin(id: String, password_hash: Secret, now: DateTime<Utc>) -> User {
    User {
        id,
        owner: BUILT_IN_ORG.into(),
        name: "admin".into(),
        user_type: User::NORMAL_USER.into(),
        display_name: "Admin".into(),
        avatar: String::new(),
        email: String::new(),
        phone: String::new(),
        country_code: String::new(),
        is_admin: true,
        is_forbidden: false,
        is_deleted: false,
        signup_application: BUILT_IN_APP.into(),
        wechat: String::new(),
        wechat_open_id: String::new(),
        wechat_union_id: String::new(),
        password_hash: Some(password_hash),
        profile: Profile::default(),
        created_time: now,
        updated_time: now,
        last_signin_time: None,
    }
}
