//! Casdoor's JSON shapes of our entities. Secrets never appear: passwords are `""`.

use chrono::{DateTime, SecondsFormat, Utc};
use iam_domain::model::{Organization, User};
use serde_json::{Value, json};

pub fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn user(u: &User) -> Value {
    let p = &u.profile;
    json!({
        "owner": u.owner,
        "name": u.name,
        "createdTime": time(&u.created_time),
        "updatedTime": time(&u.updated_time),
        "id": u.id,
        "type": u.user_type,
        "password": "",
        "passwordSalt": "",
        "displayName": u.display_name,
        "firstName": p.first_name,
        "lastName": p.last_name,
        "avatar": u.avatar,
        "email": u.email,
        "emailVerified": false,
        "phone": u.phone,
        "countryCode": u.country_code,
        "region": p.region,
        "location": p.location,
        "address": [],
        "affiliation": p.affiliation,
        "title": p.title,
        "homepage": p.homepage,
        "bio": p.bio,
        "tag": "",
        "language": p.language,
        "gender": p.gender,
        "birthday": p.birthday,
        "score": 0,
        "isAdmin": u.is_admin,
        "isForbidden": u.is_forbidden,
        "isDeleted": u.is_deleted,
        "signupApplication": u.signup_application,
        "lastSigninTime": u.last_signin_time.as_ref().map(time).unwrap_or_default(),
        "wechat": u.wechat,
        "properties": {
            "wechatOpenId": u.wechat_open_id,
            "wechatUnionId": u.wechat_union_id,
        },
        "roles": [],
        "permissions": [],
        "groups": [],
    })
}

pub fn organization(o: &Organization) -> Value {
    json!({
        "owner": "admin",
        "name": o.name,
        "createdTime": time(&o.created_time),
        "displayName": o.display_name,
        "defaultAvatar": o.default_avatar,
    })
}
