//! The Bearer APIs of SPEC §5: userinfo, get-account, update-user, get-user, get-users.

use std::sync::Arc;

use iam_domain::Error;
use iam_domain::service::Principal;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::{Object, OpenApi};
use serde_json::{Value, json};

use crate::errors::{Envelope, Failure, Reply};
use crate::extract::{BearerCaller, Caller, FormParams, Required};
use crate::params::{Count, ObjectId};
use crate::state::AppState;
use crate::tags::Tag;
use iam_wire::{self as wire, UserWire};

/// OIDC userinfo.
#[derive(Object)]
pub struct UserInfo {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub name: String,
    pub preferred_username: String,
    #[oai(rename = "displayName")]
    pub display_name: String,
    pub picture: String,
}

/// Casdoor's `set-password` form.
#[derive(Object, Default)]
#[oai(rename_all = "camelCase")]
pub struct SetPasswordForm {
    /// The user's organization; with `userName`, the user (else the caller).
    pub user_owner: Option<String>,
    pub user_name: Option<String>,
    /// Required unless the caller administers the user's organization.
    pub old_password: Option<String>,
    #[oai(validator(min_length = 1))]
    pub new_password: String,
}

/// Casdoor's `check-user-password` body: the user and the password to check.
#[derive(Object, Default)]
pub struct CheckPasswordForm {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub owner: String,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    #[oai(validator(min_length = 1))]
    pub password: String,
}

/// `/api/get-account`'s envelope, with the user's id and name on top.
#[derive(Object)]
pub struct AccountEnvelope {
    pub status: String,
    pub msg: String,
    pub sub: Option<String>,
    pub name: Option<String>,
    pub data: Option<Value>,
    pub data2: Option<Value>,
}

/// What `/api/get-account` writes: [`AccountEnvelope`]'s shape, the user serialized straight
/// into the body.
#[derive(serde::Serialize)]
struct Account<'a> {
    status: &'static str,
    msg: &'static str,
    sub: &'a str,
    name: &'a str,
    data: wire::UserView<'a>,
    data2: Option<Value>,
}

pub struct UsersApi;

impl UsersApi {
    async fn userinfo_of(caller: BearerCaller) -> Result<Reply<UserInfo>, Failure> {
        let BearerCaller { principal, claims } = caller;
        let (Principal::User(u), Some(claims)) = (principal, claims) else {
            return Err(Error::invalid("an application token has no user information").into());
        };
        Ok(Reply::json(&json!({
            "sub": u.id,
            "iss": claims.iss,
            "aud": claims.azp,
            "name": u.name,
            "preferred_username": u.name,
            "displayName": u.display_name,
            // As the ID token: a stored value from before the URL rule is no picture.
            "picture": u.avatar.url().map(|a| a.as_str()).unwrap_or_default(),
        })))
    }
}

#[OpenApi(tag = "Tag::Users")]
impl UsersApi {
    /// OIDC userinfo of a Bearer token.
    #[oai(path = "/api/userinfo", method = "get", operation_id = "userinfo")]
    async fn userinfo(&self, caller: BearerCaller) -> Result<Reply<UserInfo>, Failure> {
        Self::userinfo_of(caller).await
    }

    /// Same as `/api/userinfo`.
    #[oai(
        path = "/oauth/userinfo",
        method = "get",
        operation_id = "userinfo-oauth"
    )]
    async fn userinfo_oauth(&self, caller: BearerCaller) -> Result<Reply<UserInfo>, Failure> {
        Self::userinfo_of(caller).await
    }

    /// The caller's user (`data`) and organization (`data2`). Mints nothing.
    #[oai(
        path = "/api/get-account",
        method = "get",
        operation_id = "get-account"
    )]
    async fn get_account(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
    ) -> Result<Reply<AccountEnvelope>, Failure> {
        let (u, org) = state.iam.account(&caller.principal).await?;
        Ok(Reply::json(&Account {
            status: "ok",
            msg: "",
            sub: &u.id,
            name: &u.name,
            data: wire::UserView(&u),
            data2: org.as_ref().map(wire::organization),
        }))
    }

    /// Updates a user: `?id=owner/name`, else the body's `owner`+`name`, else the caller. A user
    /// may change only self-service fields of themself; `columns` (camelCase or snake_case,
    /// comma-separated) limits the fields. The body is JSON whatever the Content-Type.
    #[oai(
        path = "/api/update-user",
        method = "post",
        operation_id = "update-user"
    )]
    async fn update_user(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        id: Query<Option<ObjectId>>,
        /// The fields to change, comma-separated, in camelCase or snake_case.
        #[oai(validator(
            max_length = 1000,
            pattern = r"^[\s,]*(?:(?:signin_wrong_times|signup_application|signupApplication|signinWrongTimes|country_code|display_name|is_forbidden|affiliation|countryCode|displayName|isForbidden|first_name|is_deleted|firstName|isDeleted|last_name|birthday|homepage|is_admin|language|lastName|location|password|isAdmin|avatar|gender|region|email|phone|title|type|bio)\s*(?:,[\s,]*|$))*$"
        ))]
        columns: Query<Option<String>>,
        body: Required<UserWire>,
    ) -> Result<Reply<Envelope>, Failure> {
        let ((owner, name), patch) = body.parse()?.into_patch();
        let target = owner.as_deref().zip(name.as_deref());
        let changed = state
            .iam
            .update_user(
                &caller.principal,
                id.0.as_deref(),
                target,
                patch,
                columns.0.as_deref(),
            )
            .await?;
        Ok(Reply::affected(changed))
    }

    /// A user you may see (yourself, or users you administer); `data: null` when absent. By
    /// `id` (`owner/name`), or Casdoor's other ways: `owner` with `email`, `phone` or `userId`.
    #[oai(path = "/api/get-user", method = "get", operation_id = "get-user")]
    #[allow(clippy::too_many_arguments)]
    async fn get_user(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        /// `owner/name`.
        id: Query<Option<ObjectId>>,
        #[oai(validator(max_length = 100))] owner: Query<Option<String>>,
        #[oai(validator(max_length = 254))] email: Query<Option<String>>,
        #[oai(validator(max_length = 32))] phone: Query<Option<String>>,
        #[oai(name = "userId", validator(max_length = 64))] user_id: Query<Option<String>>,
    ) -> Result<Reply<Envelope>, Failure> {
        use iam_domain::directory::UserKey;
        let some = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let u = if let Some(id) = id.0 {
            state.iam.get_user(&caller.principal, &id).await?
        } else {
            let key = if let Some(e) = some(email.0) {
                UserKey::Email(e)
            } else if let Some(p) = some(phone.0) {
                UserKey::Phone(p)
            } else if let Some(i) = some(user_id.0) {
                UserKey::Id(i)
            } else {
                return Err(Failure(Error::invalid(
                    "id: is required (or owner with email, phone or userId)",
                )));
            };
            state
                .iam
                .find_user(
                    &caller.principal,
                    owner.0.as_deref().unwrap_or_default(),
                    key,
                )
                .await?
        };
        Ok(Reply::success(u.as_ref().map(wire::UserView), Value::Null))
    }

    /// The users of an organization you administer, oldest first. With `p`/`pageSize` a page
    /// (`data2` = how many match); without, all of them up to the server's `userListMax`
    /// (`data2` = how many there are). `field`/`value` search one column: `name`,
    /// `displayName`, `phone`, `email`, `wechatUnionId` by prefix, `wechat` (an openid of any of
    /// the user's mini programs) exactly; `sortField`/`sortOrder` order them.
    #[oai(path = "/api/get-users", method = "get", operation_id = "get-users")]
    #[allow(clippy::too_many_arguments)]
    async fn get_users(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 100))] owner: Query<String>,
        p: Query<Option<Count>>,
        #[oai(name = "pageSize")] page_size: Query<Option<Count>>,
        #[oai(validator(max_length = 50))] field: Query<Option<String>>,
        #[oai(validator(max_length = 200))] value: Query<Option<String>>,
        #[oai(name = "sortField", validator(max_length = 50))] sort_field: Query<Option<String>>,
        #[oai(name = "sortOrder", validator(max_length = 20))] sort_order: Query<Option<String>>,
    ) -> Result<Reply<Envelope>, Failure> {
        let params = iam_domain::directory::UserListParams {
            owner: Some(owner.0),
            p: Count::text(p.0),
            page_size: Count::text(page_size.0),
            field: field.0,
            value: value.0,
            sort_field: sort_field.0,
            sort_order: sort_order.0,
        };
        let (users, total) = state
            .iam
            .get_users_page(&caller.principal, &params, state.user_list_max)
            .await?;
        Ok(Reply::list(&users, wire::UserView, total))
    }

    /// Every organization's users (global administrators), paged like `get-users`.
    #[oai(
        path = "/api/get-global-users",
        method = "get",
        operation_id = "get-global-users"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn get_global_users(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        p: Query<Option<Count>>,
        #[oai(name = "pageSize")] page_size: Query<Option<Count>>,
        #[oai(validator(max_length = 50))] field: Query<Option<String>>,
        #[oai(validator(max_length = 200))] value: Query<Option<String>>,
        #[oai(name = "sortField", validator(max_length = 50))] sort_field: Query<Option<String>>,
        #[oai(name = "sortOrder", validator(max_length = 20))] sort_order: Query<Option<String>>,
    ) -> Result<Reply<Envelope>, Failure> {
        let params = iam_domain::directory::UserListParams {
            owner: None,
            p: Count::text(p.0),
            page_size: Count::text(page_size.0),
            field: field.0,
            value: value.0,
            sort_field: sort_field.0,
            sort_order: sort_order.0,
        };
        let (users, total) = state
            .iam
            .get_global_users(&caller.principal, &params, state.user_list_max)
            .await?;
        Ok(Reply::list(&users, wire::UserView, total))
    }

    /// The first `limit` users of an organization by `sorter` (`createdTime`, `name`,
    /// `displayName`, `lastSigninTime`, `updatedTime`), descending, as Casdoor sorts them.
    #[oai(
        path = "/api/get-sorted-users",
        method = "get",
        operation_id = "get-sorted-users"
    )]
    async fn get_sorted_users(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(min_length = 1, max_length = 100))] owner: Query<String>,
        #[oai(validator(
            pattern = r"^(createdTime|created_time|name|displayName|display_name|lastSigninTime|last_signin_time|updatedTime|updated_time)$"
        ))]
        sorter: Query<String>,
        /// At most this many (a whole number from 1); `userListMax` when absent.
        limit: Query<Option<Count>>,
    ) -> Result<Reply<Envelope>, Failure> {
        let users = state
            .iam
            .get_sorted_users(
                &caller.principal,
                &owner.0,
                &sorter.0,
                limit.0.as_deref().unwrap_or_default(),
                state.user_list_max,
            )
            .await?;
        let n = users.len();
        Ok(Reply::list(&users, wire::UserView, n))
    }

    /// How many users an organization has (`isOnline` is accepted and ignored: this server
    /// keeps no online state). `data` is the count.
    #[oai(
        path = "/api/get-user-count",
        method = "get",
        operation_id = "get-user-count"
    )]
    async fn get_user_count(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        #[oai(validator(max_length = 100))] owner: Query<String>,
        #[oai(name = "isOnline", validator(max_length = 5))] is_online: Query<Option<String>>,
    ) -> Result<Reply<Envelope>, Failure> {
        let _ = is_online;
        let n = state.iam.user_count(&caller.principal, &owner.0).await?;
        Ok(Reply::ok(json!(n), Value::Null))
    }

    /// Sets a password: your own with the old one, or (an administrator of the user's
    /// organization) anyone's without it. The organization's password rules apply; a wrong old
    /// password counts toward the lockout.
    #[oai(
        path = "/api/set-password",
        method = "post",
        operation_id = "set-password"
    )]
    async fn set_password(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        form: FormParams<SetPasswordForm>,
    ) -> Result<Reply<Envelope>, Failure> {
        let (owner, name) = match (form.get("userOwner"), form.get("userName")) {
            ("", "") => match &caller.principal {
                Principal::User(u) => (u.owner.to_string(), u.name.to_string()),
                Principal::Application(_) => {
                    return Err(Failure(Error::invalid(
                        "userOwner, userName: the user is required",
                    )));
                }
            },
            (o, n) => (o.to_owned(), n.to_owned()),
        };
        state
            .iam
            .set_user_password(
                &caller.principal,
                &owner,
                &name,
                form.get("oldPassword"),
                form.get("newPassword"),
            )
            .await?;
        Ok(Reply::affected(true))
    }

    /// Whether a password is the user's, for an administrator of the user's organization (an
    /// application's backend). Counts toward the lockout like a sign-in.
    #[oai(
        path = "/api/check-user-password",
        method = "post",
        operation_id = "check-user-password"
    )]
    async fn check_user_password(
        &self,
        state: Data<&Arc<AppState>>,
        caller: Caller,
        form: FormParams<CheckPasswordForm>,
    ) -> Result<Reply<Envelope>, Failure> {
        state
            .iam
            .check_user_password(
                &caller.principal,
                form.get("owner"),
                form.get("name"),
                form.get("password"),
            )
            .await?;
        Ok(Reply::ok(json!("ok"), Value::Null))
    }
}
