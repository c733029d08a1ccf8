//! The repository contract. Every test runs on SQLite, and on PostgreSQL when
//! `IAM_TEST_POSTGRES_URL` is set (each test in a database of its own, dropped afterwards).

use std::sync::Arc;

use chrono::Utc;
use diesel::Connection;
use diesel::connection::SimpleConnection;
use iam_domain::model::*;
use iam_domain::ports::Repository;
use iam_domain::values::{CryptoAlgorithm, DisplayName, WebUrl, WechatId};
use iam_domain::{Secret, StoreError};
use iam_store::{Driver, Store};

/// A store on a fresh database, and what must be cleaned up after.
struct Fixture {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
    /// Where the database is, for a test that writes a row as an older server left it.
    url: String,
}

impl Fixture {
    fn execute(&self, sql: &str) {
        if self.pg_drop.is_some() {
            let mut c = diesel::PgConnection::establish(&self.url).expect("connect");
            c.batch_execute(sql).expect("raw sql");
        } else {
            let mut c = diesel::SqliteConnection::establish(&self.url).expect("open");
            // Waits for locks as the store's own connections do.
            c.batch_execute("PRAGMA busy_timeout = 10000")
                .expect("busy timeout");
            c.batch_execute(sql).expect("raw sql");
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some((admin_url, db)) = self.pg_drop.take() {
            // Best effort: the pool may still hold connections, so force them out.
            if let Ok(mut c) = diesel::PgConnection::establish(&admin_url) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
            }
        }
    }
}

async fn sqlite() -> Fixture {
    sqlite_pool(8).await
}

/// A store on a SQLite file of its own with `pool_size` connections.
async fn sqlite_pool(pool_size: u32) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("iam.db");
    let store = Store::open(
        Driver::Sqlite,
        path.to_str().expect("utf-8 path"),
        pool_size,
    )
    .await
    .expect("open sqlite");
    store.migrate().await.expect("migrate");
    Fixture {
        url: path.to_str().expect("utf-8 path").to_owned(),
        store,
        _dir: Some(dir),
        pg_drop: None,
    }
}

/// A store on a PostgreSQL database of its own. Without `IAM_TEST_POSTGRES_URL` the run is
/// skipped (said on stderr), except in CI (`CI` set), where that is a failure.
async fn postgres() -> Option<Fixture> {
    let Some(admin_url) = std::env::var("IAM_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but IAM_TEST_POSTGRES_URL is not: the PostgreSQL runs cannot be skipped"
        );
        eprintln!(
            "SKIPPED: IAM_TEST_POSTGRES_URL is not set, so this PostgreSQL run tests nothing"
        );
        return None;
    };
    let db = format!("iam_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin =
        diesel::PgConnection::establish(&admin_url).expect("connect to IAM_TEST_POSTGRES_URL");
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .expect("create test database");
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b.to_owned(), format!("?{q}")),
        None => (admin_url.clone(), String::new()),
    };
    let base = base
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(base);
    let url = format!("{base}/{db}{query}");
    let store = Store::open(Driver::Postgres, &url, 16)
        .await
        .expect("open postgres");
    store.migrate().await.expect("migrate");
    Some(Fixture {
        url,
        store,
        _dir: None,
        pg_drop: Some((admin_url, db)),
    })
}

fn n(s: &str) -> iam_domain::values::ObjectName {
    iam_domain::values::ObjectName::parse("name", s).unwrap()
}

fn dn(s: &str) -> iam_domain::values::DisplayName {
    iam_domain::values::DisplayName::parse("displayName", s).unwrap()
}

/// The new user a first sign-in would create.
fn offer(user: User) -> iam_domain::ports::NewUser {
    std::sync::Arc::new(move || user.clone())
}

macro_rules! contract {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let f = super::sqlite().await;
                ($body)(f.store.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(f) = super::postgres().await else {
                    return;
                };
                ($body)(f.store.clone()).await;
            }
        }
    };
}

fn org(name: &str) -> Organization {
    Organization {
        name: n(name),
        display_name: dn(&format!("{name} org")),
        default_avatar: WebUrl::parse("defaultAvatar", "https://cdn.example.com/default.png")
            .unwrap(),
        created_time: Utc::now(),
        extra: Default::default(),
    }
}

fn provider(owner: &str, name: &str) -> Provider {
    Provider {
        owner: n(owner),
        name: n(name),
        display_name: DisplayName::default(),
        category: "OAuth".into(),
        provider_type: "WeChat".into(),
        sub_type: String::new(),
        client_id: "wx5f3c1b2a9d8e7f60".into(),
        client_secret: Secret::new("0c6d2a1b9e8f7d6c5b4a39281706f5e4"),
        created_time: Utc::now(),
        extra: Default::default(),
    }
}

fn app(name: &str, org: &str, client_id: &str, providers: &[&str]) -> Application {
    Application {
        name: n(name),
        display_name: DisplayName::default(),
        organization: n(org),
        client_id: iam_domain::values::ClientId::parse(client_id).unwrap(),
        client_secret: Secret::new("s3cret"),
        cert: None,
        enable_sign_up: true,
        providers: providers
            .iter()
            .map(|p| ProviderItem {
                owner: String::new(),
                name: (*p).into(),
                can_sign_up: true,
                can_sign_in: true,
            })
            .collect(),
        grant_types: vec!["authorization_code".into()],
        token_format: "JWT".into(),
        expire_in_hours: 168,
        refresh_expire_in_hours: 720,
        max_sessions_per_user: 0,
        created_time: Utc::now(),
        extra: Default::default(),
    }
}

fn user(owner: &str, name: &str) -> User {
    let now = Utc::now();
    User {
        id: uuid::Uuid::new_v4().to_string(),
        owner: n(owner),
        name: n(name),
        user_type: User::NORMAL_USER.into(),
        display_name: dn("Alice"),
        avatar: WebUrl::Empty,
        email: String::new(),
        phone: String::new(),
        country_code: String::new(),
        phone_e164: String::new(),
        is_admin: false,
        is_forbidden: false,
        is_deleted: false,
        signup_application: String::new(),
        wechat: None,
        wechat_open_id: None,
        wechat_union_id: None,
        password_hash: None,
        profile: Profile::default(),
        created_time: now,
        updated_time: now,
        last_signin_time: None,
        extra: Default::default(),
    }
}

fn identity(appid: &str, openid: &str, unionid: &str, org: &str) -> WechatIdentity {
    WechatIdentity {
        appid: iam_domain::values::AppId::parse(appid).expect("a test appid"),
        openid: WechatId::parse("openid", openid).expect("a test openid"),
        unionid: (!unionid.is_empty())
            .then(|| WechatId::parse("unionid", unionid).expect("a test unionid")),
        organization: org.into(),
        user_id: String::new(),
        created_time: Utc::now(),
        last_signin_time: None,
    }
}

/// A mini program sign-in of `ident`, with the phone WeChat verified for it, if any.
fn signin(ident: &WechatIdentity, phone: Option<&str>) -> WechatSignIn {
    WechatSignIn {
        identity: ident.clone(),
        phone: phone.map(|p| iam_domain::values::Phone::parse("phone", p, "86").unwrap()),
    }
}

fn wechat_user(org: &str, ident: &WechatIdentity) -> User {
    let mut u = user(org, &format!("wechat-{}", ident.openid));
    u.wechat = Some(ident.openid.clone());
    u.wechat_open_id = Some(ident.openid.clone());
    u.wechat_union_id = ident.unionid.clone();
    u
}

contract!(migrations_are_idempotent, |s: Store| async move {
    assert_eq!(s.migrate().await.unwrap(), 0, "second run applies nothing");
    s.ping().await.unwrap();
});

contract!(organizations_round_trip, |s: Store| async move {
    let o = org("demo");
    s.insert_organization(&o).await.unwrap();
    let back = s.get_organization("demo").await.unwrap().unwrap();
    assert_eq!(back.name, o.name);
    assert_eq!(back.default_avatar, o.default_avatar);
    assert_eq!(
        back.created_time.timestamp_micros(),
        o.created_time.timestamp_micros()
    );
    assert!(matches!(
        s.insert_organization(&o).await,
        Err(StoreError::Conflict(_))
    ));
    let mut changed = o.clone();
    changed.display_name = dn("Renamed");
    assert!(s.update_organization(&changed).await.unwrap());
    assert_eq!(
        s.get_organization("demo")
            .await
            .unwrap()
            .unwrap()
            .display_name,
        "Renamed"
    );
    assert!(!s.update_organization(&org("nope")).await.unwrap());
    assert_eq!(s.list_organizations().await.unwrap().len(), 1);
    assert!(s.delete_organization("demo").await.unwrap());
    assert!(s.get_organization("demo").await.unwrap().is_none());
});

contract!(
    deleting_an_organization_that_does_not_exist_deletes_nothing,
    |s: Store| async move {
        // `admin` owns the shared providers but is no organization: deleting "it" must not
        // take the providers along.
        s.insert_provider(&provider("admin", "wx")).await.unwrap();
        assert!(!s.delete_organization("admin").await.unwrap());
        assert!(s.get_provider("admin", "wx").await.unwrap().is_some());
    }
);

contract!(
    organization_with_users_is_not_deleted,
    |s: Store| async move {
        s.insert_organization(&org("demo")).await.unwrap();
        s.insert_user(&user("demo", "alice")).await.unwrap();
        let err = s.delete_organization("demo").await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert!(s.get_organization("demo").await.unwrap().is_some());
        assert!(s.get_user("demo", "alice").await.unwrap().is_some());
    }
);

contract!(applications_check_their_references, |s: Store| async move {
    s.insert_organization(&org("demo")).await.unwrap();
    let missing = s
        .insert_application(&app("a1", "demo", "cid1", &["wx"]))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::MissingReference(ref m) if m.contains("wx")),
        "{missing:?}"
    );
    assert!(
        s.get_application("a1").await.unwrap().is_none(),
        "nothing half-written"
    );

    s.insert_provider(&provider("admin", "wx")).await.unwrap();
    s.insert_provider(&provider("admin", "other"))
        .await
        .unwrap();
    let a = app("a1", "demo", "cid1", &["other", "wx"]);
    s.insert_application(&a).await.unwrap();
    let back = s
        .get_application_by_client_id("cid1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.providers, a.providers, "provider order is kept");
    assert_eq!(back.client_secret.expose(), "s3cret");

    let dup = s
        .insert_application(&app("a2", "demo", "cid1", &[]))
        .await
        .unwrap_err();
    assert_eq!(dup, StoreError::Conflict("application clientId".into()));
    let no_org = s
        .insert_application(&app("a3", "ghost", "cid3", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(no_org, StoreError::MissingReference(_)),
        "{no_org:?}"
    );
});

contract!(users_are_unique_per_organization, |s: Store| async move {
    s.insert_organization(&org("demo")).await.unwrap();
    s.insert_organization(&org("other")).await.unwrap();
    let mut alice = user("demo", "alice");
    alice.password_hash = Some(Secret::new("$argon2id$v=19$x"));
    alice.profile.bio = "hi".into();
    alice.extra.insert("tag".into(), serde_json::json!("vip"));
    s.insert_user(&alice).await.unwrap();
    assert_eq!(
        s.insert_user(&user("demo", "alice")).await.unwrap_err(),
        StoreError::Conflict("user owner/name".into())
    );
    s.insert_user(&user("other", "alice")).await.unwrap();
    assert!(matches!(
        s.insert_user(&user("ghost", "bob")).await.unwrap_err(),
        StoreError::MissingReference(_)
    ));
    let back = s.get_user_by_id(&alice.id).await.unwrap().unwrap();
    assert_eq!(
        back,
        User {
            created_time: back.created_time,
            updated_time: back.updated_time,
            ..alice.clone()
        }
    );
    alice.display_name = dn("Alice B");
    alice.last_signin_time = Some(Utc::now());
    alice.extra.insert("score".into(), serde_json::json!(7));
    assert!(s.update_user(&alice).await.unwrap());
    let back = s.get_user("demo", "alice").await.unwrap().unwrap();
    assert_eq!(back.display_name, "Alice B");
    assert_eq!(back.extra, alice.extra, "Casdoor's other fields are kept");
    assert!(back.last_signin_time.is_some());
    assert_eq!(s.count_users("demo").await.unwrap(), 1);
    assert_eq!(s.list_users(None).await.unwrap().len(), 2);
    assert!(s.delete_user("demo", "alice").await.unwrap());
    assert!(!s.delete_user("demo", "alice").await.unwrap());
});

contract!(
    fifty_concurrent_first_signins_make_one_user,
    |s: Store| async move {
        s.insert_organization(&org("demo")).await.unwrap();
        let ident = identity(
            "wx5f3c1b2a9d8e7f60",
            "oGZUI0egBJY1zhBYw2KhdUfwVJJE",
            "",
            "demo",
        );
        let s = Arc::new(s);
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let s = s.clone();
            let ident = ident.clone();
            tasks.push(tokio::spawn(async move {
                // Every caller proposes its own new user (own UUID); only one may win.
                let proposal = wechat_user("demo", &ident);
                s.find_or_create_wechat_user(&signin(&ident, None), Some(offer(proposal)))
                    .await
            }));
        }
        let mut created = 0;
        let mut ids = std::collections::HashSet::new();
        for t in tasks {
            match t.await.unwrap().unwrap() {
                WechatUserOutcome::Created(u) => {
                    created += 1;
                    ids.insert(u.id);
                }
                WechatUserOutcome::Found { user, .. } => {
                    ids.insert(user.id);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(created, 1, "exactly one caller created the user");
        assert_eq!(ids.len(), 1, "every caller got the same user");
        assert_eq!(s.count_users("demo").await.unwrap(), 1);
    }
);

contract!(unionid_links_a_second_mini_program, |s: Store| async move {
    s.insert_organization(&org("demo")).await.unwrap();
    let first = identity("wxaaaaaaaaaaaaaaaa", "oAAAA", "oUNION", "demo");
    let created = s
        .find_or_create_wechat_user(
            &signin(&first, None),
            Some(offer(wechat_user("demo", &first))),
        )
        .await
        .unwrap();
    let WechatUserOutcome::Created(u) = created else {
        panic!("{created:?}")
    };
    let second = identity("wxbbbbbbbbbbbbbbbb", "oBBBB", "oUNION", "demo");
    let linked = s
        .find_or_create_wechat_user(
            &signin(&second, None),
            Some(offer(wechat_user("demo", &second))),
        )
        .await
        .unwrap();
    assert!(
        matches!(linked, WechatUserOutcome::Linked(ref l) if l.id == u.id),
        "{linked:?}"
    );
    let again = s
        .find_or_create_wechat_user(&signin(&second, None), None)
        .await
        .unwrap();
    assert!(
        matches!(again, WechatUserOutcome::Found { ref user, .. } if user.id == u.id),
        "{again:?}"
    );
    assert_eq!(s.count_users("demo").await.unwrap(), 1);
    // Another organization does not see this unionid.
    s.insert_organization(&org("other")).await.unwrap();
    let elsewhere = identity("wxcccccccccccccccc", "oCCCC", "oUNION", "other");
    assert_eq!(
        s.find_or_create_wechat_user(&signin(&elsewhere, None), None)
            .await
            .unwrap(),
        WechatUserOutcome::NotFound
    );
    let stored = s
        .get_wechat_identity("wxbbbbbbbbbbbbbbbb", "oBBBB")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.user_id, u.id);
});

fn with_phone(mut u: User, phone: &str) -> User {
    u.set_phone(&iam_domain::values::Phone::parse("phone", phone, "86").unwrap());
    u
}

contract!(
    a_phone_belongs_to_one_user_of_an_organization_by_constraint,
    |s: Store| async move {
        s.insert_organization(&org("demo")).await.unwrap();
        s.insert_organization(&org("other")).await.unwrap();
        let a = with_phone(user("demo", "a"), "13800138000");
        s.insert_user(&a).await.unwrap();
        let b = with_phone(user("demo", "b"), "13800138000");
        match s.insert_user(&b).await {
            Err(StoreError::Conflict(what)) => assert_eq!(what, "user phone"),
            other => panic!("{other:?}"),
        }
        assert!(
            s.get_user("demo", "b").await.unwrap().is_none(),
            "nothing written"
        );
        // Another organization may hold the same number; users without one never collide.
        s.insert_user(&with_phone(user("other", "a"), "13800138000"))
            .await
            .unwrap();
        s.insert_user(&user("demo", "c")).await.unwrap();
        s.insert_user(&user("demo", "d")).await.unwrap();
        let mut d = s.get_user("demo", "d").await.unwrap().unwrap();
        d.set_phone(&iam_domain::values::Phone::parse("phone", "13800138000", "CN").unwrap());
        assert!(matches!(
            s.update_user(&d).await,
            Err(StoreError::Conflict(_))
        ));
        let found = s
            .get_user_by_phone("demo", "+8613800138000")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, a.id);
        assert_eq!(
            (found.phone.as_str(), found.country_code.as_str()),
            ("13800138000", "CN")
        );
    }
);

contract!(
    twenty_new_wechat_users_with_one_phone_end_as_one_user,
    |s: Store| async move {
        s.insert_organization(&org("demo")).await.unwrap();
        let s = Arc::new(s);
        let mut tasks = Vec::new();
        for i in 0..20 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let ident = identity("wx5f3c1b2a9d8e7f60", &format!("oPHONE{i:02}"), "", "demo");
                let proposal = with_phone(wechat_user("demo", &ident), "13800138000");
                s.find_or_create_wechat_user(
                    &signin(&ident, Some("13800138000")),
                    Some(offer(proposal)),
                )
                .await
            }));
        }
        let (mut created, mut linked) = (0, 0);
        let mut ids = std::collections::HashSet::new();
        for t in tasks {
            match t.await.unwrap().unwrap() {
                WechatUserOutcome::Created(u) => {
                    created += 1;
                    ids.insert(u.id);
                }
                WechatUserOutcome::Linked(u) => {
                    linked += 1;
                    ids.insert(u.id);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((created, linked), (1, 19));
        assert_eq!(ids.len(), 1);
        assert_eq!(s.count_users("demo").await.unwrap(), 1);
        let id = ids.into_iter().next().unwrap();
        assert_eq!(s.list_user_identities(&id).await.unwrap().len(), 20);
    }
);

contract!(
    a_phone_of_another_user_is_a_conflict_and_writes_nothing,
    |s: Store| async move {
        s.insert_organization(&org("demo")).await.unwrap();
        let holder = with_phone(user("demo", "holder"), "13800138000");
        s.insert_user(&holder).await.unwrap();
        // A known identity of another user.
        let known = identity("wxaaaaaaaaaaaaaaaa", "oKNOWN", "oUNION", "demo");
        let WechatUserOutcome::Created(owner) = s
            .find_or_create_wechat_user(
                &signin(&known, None),
                Some(offer(wechat_user("demo", &known))),
            )
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            s.find_or_create_wechat_user(&signin(&known, Some("13800138000")), None)
                .await
                .unwrap(),
            WechatUserOutcome::PhoneConflict
        );
        // A new identity that the unionid would link to `owner`: not linked.
        let sibling = identity("wxbbbbbbbbbbbbbbbb", "oSIBLING", "oUNION", "demo");
        assert_eq!(
            s.find_or_create_wechat_user(&signin(&sibling, Some("13800138000")), None)
                .await
                .unwrap(),
            WechatUserOutcome::PhoneConflict
        );
        assert!(
            s.get_wechat_identity("wxbbbbbbbbbbbbbbbb", "oSIBLING")
                .await
                .unwrap()
                .is_none()
        );
        // The user's own phone is no conflict; a new identity with the holder's phone links.
        let stranger = identity("wxaaaaaaaaaaaaaaaa", "oSTRANGER", "", "demo");
        let linked = s
            .find_or_create_wechat_user(&signin(&stranger, Some("13800138000")), None)
            .await
            .unwrap();
        assert!(
            matches!(linked, WechatUserOutcome::Linked(ref u) if u.id == holder.id),
            "{linked:?}"
        );
        let again = s
            .find_or_create_wechat_user(&signin(&stranger, Some("13800138000")), None)
            .await
            .unwrap();
        assert!(matches!(again, WechatUserOutcome::Found { ref user, .. } if user.id == holder.id));
        assert_eq!(s.count_users("demo").await.unwrap(), 2, "{}", owner.id);
    }
);

contract!(identities_bind_and_unbind, |s: Store| async move {
    s.insert_organization(&org("demo")).await.unwrap();
    let alice = user("demo", "alice");
    s.insert_user(&alice).await.unwrap();
    let mut bob = user("demo", "bob");
    bob.password_hash = Some(Secret::new("$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA"));
    s.insert_user(&bob).await.unwrap();
    let mut a1 = identity("wxaaaaaaaaaaaaaaaa", "oA1", "oU", "demo");
    a1.user_id = alice.id.clone();
    assert_eq!(
        s.bind_wechat_identity(&a1, b"k1").await.unwrap(),
        BindOutcome::Bound
    );
    assert_eq!(
        s.bind_wechat_identity(&a1, b"k2").await.unwrap(),
        BindOutcome::AlreadyBound
    );
    assert_eq!(
        s.get_wechat_session("wxaaaaaaaaaaaaaaaa", "oA1")
            .await
            .unwrap()
            .unwrap(),
        b"k2"
    );
    let back = s.get_user_by_id(&alice.id).await.unwrap().unwrap();
    assert_eq!(
        (back.wechat.as_deref(), back.wechat_union_id.as_deref()),
        (Some("oA1"), Some("oU"))
    );
    let mut stolen = a1.clone();
    stolen.user_id = bob.id.clone();
    assert_eq!(
        s.bind_wechat_identity(&stolen, b"k3").await.unwrap(),
        BindOutcome::OtherUser
    );
    assert_eq!(
        s.get_wechat_session("wxaaaaaaaaaaaaaaaa", "oA1")
            .await
            .unwrap()
            .unwrap(),
        b"k2",
        "untouched"
    );
    let listed = s.list_user_identities(&alice.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].last_signin_time.is_some(),
        "the key's time is the last sign-in"
    );
    // Alice's only way in stays; with a second identity the first may go.
    assert_eq!(
        s.unbind_wechat_identity(&alice.id, "wxaaaaaaaaaaaaaaaa", None)
            .await
            .unwrap(),
        UnbindOutcome::LastWayIn
    );
    let mut b1 = identity("wxbbbbbbbbbbbbbbbb", "oB1", "oU", "demo");
    b1.user_id = alice.id.clone();
    s.bind_wechat_identity(&b1, b"k4").await.unwrap();
    assert_eq!(
        s.unbind_wechat_identity(&alice.id, "wxaaaaaaaaaaaaaaaa", None)
            .await
            .unwrap(),
        UnbindOutcome::Unbound("oA1".into())
    );
    assert!(
        s.get_wechat_session("wxaaaaaaaaaaaaaaaa", "oA1")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.get_user_by_id(&alice.id)
            .await
            .unwrap()
            .unwrap()
            .wechat
            .as_deref(),
        Some("oB1")
    );
    assert_eq!(
        s.unbind_wechat_identity(&alice.id, "wxaaaaaaaaaaaaaaaa", None)
            .await
            .unwrap(),
        UnbindOutcome::NotBound
    );
    // Bob has a password: his only identity may go.
    let mut c1 = identity("wxaaaaaaaaaaaaaaaa", "oC1", "", "demo");
    c1.user_id = bob.id.clone();
    s.bind_wechat_identity(&c1, b"k5").await.unwrap();
    assert_eq!(
        s.unbind_wechat_identity(&bob.id, "wxaaaaaaaaaaaaaaaa", None)
            .await
            .unwrap(),
        UnbindOutcome::Unbound("oC1".into())
    );
    // Two WeChat accounts of one mini program (the second linked by its phone, say): an
    // unbind must name one, and removes only that one, its key, and never the other.
    for (openid, key) in [("oD1", b"k6"), ("oD2", b"k7")] {
        let mut d = identity("wxaaaaaaaaaaaaaaaa", openid, "", "demo");
        d.user_id = bob.id.clone();
        s.bind_wechat_identity(&d, key).await.unwrap();
    }
    assert_eq!(
        s.unbind_wechat_identity(&bob.id, "wxaaaaaaaaaaaaaaaa", None)
            .await
            .unwrap(),
        UnbindOutcome::Several(vec!["oD1".into(), "oD2".into()])
    );
    assert_eq!(s.list_user_identities(&bob.id).await.unwrap().len(), 2);
    assert_eq!(
        s.unbind_wechat_identity(&bob.id, "wxaaaaaaaaaaaaaaaa", Some("oX"))
            .await
            .unwrap(),
        UnbindOutcome::NotBound
    );
    assert_eq!(
        s.unbind_wechat_identity(&bob.id, "wxaaaaaaaaaaaaaaaa", Some("oD1"))
            .await
            .unwrap(),
        UnbindOutcome::Unbound("oD1".into())
    );
    let left = s.list_user_identities(&bob.id).await.unwrap();
    assert_eq!(
        left.iter().map(|i| i.openid.as_str()).collect::<Vec<_>>(),
        ["oD2"]
    );
    assert!(
        s.get_wechat_session("wxaaaaaaaaaaaaaaaa", "oD1")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.get_wechat_session("wxaaaaaaaaaaaaaaaa", "oD2")
            .await
            .unwrap()
            .unwrap(),
        b"k7"
    );
    assert_eq!(
        s.get_user_by_id(&bob.id)
            .await
            .unwrap()
            .unwrap()
            .wechat
            .as_deref(),
        Some("oD2"),
        "Casdoor's wechat field moves to the identity left"
    );
});

contract!(
    phones_from_before_get_their_e164_and_a_clash_stops_the_upgrade,
    |s: Store| async move {
        s.insert_organization(&org("demo")).await.unwrap();
        // What a server from before §8 stored: a phone without its E.164 form.
        let mut a = user("demo", "a");
        (a.phone, a.country_code) = ("13800138000".into(), "CN".into());
        s.insert_user(&a).await.unwrap();
        let mut junk = user("demo", "junk");
        junk.phone = "not a phone".into();
        s.insert_user(&junk).await.unwrap();
        s.migrate().await.unwrap();
        assert_eq!(
            s.get_user("demo", "a").await.unwrap().unwrap().phone_e164,
            "+8613800138000"
        );
        let kept = s.get_user("demo", "junk").await.unwrap().unwrap();
        assert_eq!(
            (kept.phone.as_str(), kept.phone_e164.as_str()),
            ("not a phone", "")
        );
        // Two more with one number (written without E.164, as before §8): the upgrade stops,
        // naming both, and writes nothing.
        for name in ["b", "c"] {
            let mut u = user("demo", name);
            (u.phone, u.country_code) = ("+86 139 0013 9000".into(), String::new());
            s.insert_user(&u).await.unwrap();
        }
        let mut d = user("demo", "d");
        (d.phone, d.country_code) = ("13800138000".into(), "CN".into());
        s.insert_user(&d).await.unwrap();
        let e = s.migrate().await.unwrap_err().to_string();
        assert!(e.contains("demo/b and demo/c both have ***9000"), "{e}");
        assert!(e.contains("demo/a and demo/d both have ***8000"), "{e}");
        for name in ["b", "c", "d"] {
            let u = s.get_user("demo", name).await.unwrap().unwrap();
            assert_eq!(u.phone_e164, "", "nothing written for {name}");
            assert!(!u.phone.is_empty(), "no phone dropped");
        }
    }
);

fn record(
    org: &str,
    user: &str,
    action: &str,
    response: &str,
    at: chrono::DateTime<Utc>,
) -> Record {
    Record {
        name: uuid::Uuid::new_v4().to_string(),
        created_time: at,
        organization: org.into(),
        user_name: user.into(),
        action: action.into(),
        response: response.into(),
        status_code: if response == "ok" { 200 } else { 400 },
        ..Record::default()
    }
}

contract!(
    records_are_filtered_paginated_sorted_and_purged,
    |s: Store| async move {
        let now = Utc::now();
        let mut batch = Vec::new();
        for i in 0..30 {
            let at = now - chrono::Duration::minutes(i);
            let org = if i % 3 == 0 { "other" } else { "demo" };
            let response = if i % 2 == 0 { "ok" } else { "invalid_grant" };
            batch.push(record(
                org,
                &format!("u{}", i % 5),
                "signin-password",
                response,
                at,
            ));
        }
        batch.push(record(
            "demo",
            "old",
            "update-user",
            "ok",
            now - chrono::Duration::days(100),
        ));
        s.insert_records(&batch).await.unwrap();
        let all = |q: RecordQuery| {
            let s = s.clone();
            async move { s.list_records(&q).await.unwrap() }
        };
        let (page, total) = all(RecordQuery {
            organization: Some("demo".into()),
            limit: 5,
            ..Default::default()
        })
        .await;
        assert_eq!(
            (page.len(), total),
            (5, 21),
            "20 demo sign-ins and the old update"
        );
        assert!(
            page.windows(2)
                .all(|w| w[0].created_time >= w[1].created_time),
            "newest first"
        );
        assert!(page[0].id > 0);
        let (page2, _) = all(RecordQuery {
            organization: Some("demo".into()),
            offset: 5,
            limit: 5,
            ..Default::default()
        })
        .await;
        assert!(
            page2.iter().all(|r| !page.iter().any(|p| p.id == r.id)),
            "pages do not overlap"
        );
        let (_, failed) = all(RecordQuery {
            organization: Some("demo".into()),
            response: Some("invalid_grant".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(failed, 10);
        let (last_day, n) = all(RecordQuery {
            organization: Some("demo".into()),
            from: Some(now - chrono::Duration::days(1)),
            sort: Some((RecordField::CreatedTime, true)),
            field: Some((RecordField::User, "u1".into())),
            ..Default::default()
        })
        .await;
        assert_eq!(n, last_day.len() as u64);
        assert!(last_day.iter().all(|r| r.user_name == "u1"));
        assert!(
            last_day
                .windows(2)
                .all(|w| w[0].created_time <= w[1].created_time),
            "ascending"
        );
        let (_, everyone) = all(RecordQuery::default()).await;
        assert_eq!(everyone, 31);
        // Retention: only what is older than the cutoff goes.
        let r = s
            .purge(now, now - chrono::Duration::days(90), 1000)
            .await
            .unwrap();
        assert_eq!(r.records, 1);
        assert_eq!(all(RecordQuery::default()).await.1, 30);
    }
);

contract!(
    finished_days_are_rolled_up_once_and_add_up,
    |s: Store| async move {
        s.insert_organization(&org("demo")).await.unwrap();
        let day = |d: &str, h: u32| {
            chrono::DateTime::parse_from_rfc3339(&format!("{d}T{h:02}:30:00Z"))
                .unwrap()
                .with_timezone(&Utc)
        };
        let mut batch = Vec::new();
        for h in 0..10 {
            batch.push(record(
                "demo",
                "u",
                "signin-wechat-miniprogram",
                "ok",
                day("2026-11-20", h),
            ));
        }
        let mut refused = record(
            "demo",
            "",
            "signin-wechat-miniprogram",
            "invalid_grant",
            day("2026-11-20", 23),
        );
        refused.wechat_errcode = 40029;
        batch.push(refused);
        batch.push(record(
            "other",
            "u",
            "signin-password",
            "ok",
            day("2026-11-21", 1),
        ));
        s.insert_records(&batch).await.unwrap();
        let mut u = user("demo", "new-on-the-20th");
        u.created_time = day("2026-11-20", 5);
        s.insert_user(&u).await.unwrap();
        let s = Arc::new(s);
        let (a, b) = tokio::join!(
            s.roll_up_days("2026-11-19", "2026-11-22"),
            s.roll_up_days("2026-11-19", "2026-11-22")
        );
        assert_eq!(a.unwrap() + b.unwrap(), 3, "each of the three days once");
        assert_eq!(s.roll_up_days("2026-11-19", "2026-11-22").await.unwrap(), 0);
        let rows = s.rollup_counts(Some("demo"), "2026-11-19").await.unwrap();
        let n = |action: &str, response: &str| {
            rows.iter()
                .filter(|r| {
                    r.bucket == "2026-11-20" && r.action == action && r.response == response
                })
                .map(|r| r.n)
                .sum::<u64>()
        };
        assert_eq!(n("signin-wechat-miniprogram", "ok"), 10);
        assert_eq!(n("signin-wechat-miniprogram", "invalid_grant"), 1);
        assert_eq!(n("new-user", "ok"), 1);
        assert!(rows.iter().any(|r| r.errcode == 40029));
        assert!(
            rows.iter().all(|r| r.bucket != "2026-11-21"),
            "other's day is not demo's"
        );
        let live = s
            .record_counts(Some("demo"), day("2026-11-20", 0), false)
            .await
            .unwrap();
        assert_eq!(
            live.iter()
                .filter(|r| r.bucket == "2026-11-20T03")
                .map(|r| r.n)
                .sum::<u64>(),
            1
        );
        let all = s
            .record_counts(None, day("2026-11-20", 0), true)
            .await
            .unwrap();
        assert_eq!(all.iter().map(|r| r.n).sum::<u64>(), 12);
        let users = s
            .new_users_since(Some("demo"), day("2026-11-20", 0))
            .await
            .unwrap();
        assert!(users.contains(&("2026-11-20".to_owned(), 1)), "{users:?}");
    }
);

contract!(session_keys_are_replaced, |s: Store| async move {
    assert!(s.get_wechat_session("wx1", "o1").await.unwrap().is_none());
    s.save_wechat_session("wx1", "o1", b"sealed-one")
        .await
        .unwrap();
    s.save_wechat_session("wx1", "o1", b"sealed-two")
        .await
        .unwrap();
    assert_eq!(
        s.get_wechat_session("wx1", "o1").await.unwrap().unwrap(),
        b"sealed-two"
    );
});

/// A sign-in of `user` in `app` at `at`, its refresh token `hash` living `hours`.
fn sign_in(
    sid: &str,
    user: &str,
    app: &str,
    hash: &str,
    at: chrono::DateTime<Utc>,
    hours: i64,
) -> SignInWrite {
    let expires = at + chrono::Duration::hours(hours);
    SignInWrite {
        user: iam_domain::model::UserTouch::Nothing,
        wechat_key: None,
        identity_unionid: None,
        record: None,
        session: Session {
            id: sid.into(),
            organization: "demo".into(),
            application: app.into(),
            user_id: user.into(),
            user_name: format!("name-{user}"),
            created_time: at,
            last_active_time: at,
            expires_time: expires,
            client_ip: "127.0.0.1".into(),
            user_agent: "test".into(),
            revoked_time: None,
            revoked_reason: String::new(),
        },
        refresh: refresh(hash, sid, app, user, at, expires),
        max_sessions: 0,
    }
}

fn refresh(
    hash: &str,
    sid: &str,
    app: &str,
    user: &str,
    at: chrono::DateTime<Utc>,
    expires: chrono::DateTime<Utc>,
) -> RefreshToken {
    RefreshToken {
        hash: hash.into(),
        session_id: sid.into(),
        application: app.into(),
        organization: "demo".into(),
        user_id: user.into(),
        scope: "openid".into(),
        created_time: at,
        expires_time: expires,
        used: false,
    }
}

contract!(
    refresh_tokens_rotate_once_within_their_session,
    |s: Store| async move {
        let now = Utc::now();
        let later = now + chrono::Duration::hours(48);
        assert!(
            s.record_sign_in(&sign_in("s1", "u1", "a1", "rh1", now, 24))
                .await
                .unwrap()
                .is_empty()
        );
        let stored = s.get_session("s1").await.unwrap().unwrap();
        assert_eq!(stored.user_name, "name-u1");
        assert_eq!(stored.client_ip, "127.0.0.1");
        assert!(stored.is_active(now));
        // The same session id again is a conflict, and writes nothing.
        assert!(matches!(
            s.record_sign_in(&sign_in("s1", "u1", "a1", "other", now, 24))
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert!(s.get_refresh_token("other").await.unwrap().is_none());

        // Another application cannot present the token.
        let next = refresh("rh2", "", "", "", now, later);
        assert_eq!(
            s.rotate_refresh("rh1", "a2", &next, later).await.unwrap(),
            RefreshOutcome::Unknown
        );
        let RefreshOutcome::Rotated(session, token) =
            s.rotate_refresh("rh1", "a1", &next, later).await.unwrap()
        else {
            panic!("the first presentation rotates");
        };
        assert_eq!(session.id, "s1");
        assert_eq!(
            session.expires_time.timestamp(),
            later.timestamp(),
            "the session lives on"
        );
        assert_eq!(
            (token.session_id.as_str(), token.user_id.as_str()),
            ("s1", "u1")
        );
        assert!(s.get_refresh_token("rh1").await.unwrap().unwrap().used);

        // Presenting the used token again is reuse: the session ends, and its newest token with it.
        let again = refresh("rh3", "", "", "", now, later);
        assert_eq!(
            s.rotate_refresh("rh1", "a1", &again, later).await.unwrap(),
            RefreshOutcome::Reused("s1".into())
        );
        assert!(
            s.get_refresh_token("rh3").await.unwrap().is_none(),
            "nothing was issued"
        );
        let stored = s.get_session("s1").await.unwrap().unwrap();
        assert!(!stored.is_active(now));
        assert_eq!(stored.revoked_reason, "refresh token reused");
        assert_eq!(
            s.rotate_refresh("rh2", "a1", &again, later).await.unwrap(),
            RefreshOutcome::Revoked
        );
        assert_eq!(
            s.rotate_refresh("nope", "a1", &again, later).await.unwrap(),
            RefreshOutcome::Unknown
        );

        // An expired refresh token does not rotate.
        let past = now - chrono::Duration::hours(2);
        s.record_sign_in(&sign_in("s2", "u1", "a1", "old", past, 1))
            .await
            .unwrap();
        assert_eq!(
            s.rotate_refresh("old", "a1", &again, later).await.unwrap(),
            RefreshOutcome::Expired
        );
    }
);

contract!(
    concurrent_refreshes_end_the_session,
    |s: Store| async move {
        let now = Utc::now();
        let later = now + chrono::Duration::hours(1);
        for round in 0..10 {
            let sid = format!("race-{round}");
            let first = format!("rt-{round}");
            s.record_sign_in(&sign_in(&sid, "u1", "a1", &first, now, 1))
                .await
                .unwrap();
            let tasks: Vec<_> = (0..2)
                .map(|i| {
                    let (s, first) = (s.clone(), first.clone());
                    let next = refresh(&format!("rt-{round}-{i}"), "", "", "", now, later);
                    tokio::spawn(async move { s.rotate_refresh(&first, "a1", &next, later).await })
                })
                .collect();
            let mut rotated = 0;
            for t in tasks {
                match t.await.unwrap().unwrap() {
                    RefreshOutcome::Rotated(..) => rotated += 1,
                    RefreshOutcome::Reused(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(rotated, 1, "one presentation wins");
            assert!(
                !s.get_session(&sid).await.unwrap().unwrap().is_active(now),
                "round {round}: the winner's chain is dead too"
            );
        }
    }
);

/// A stream of sign-ins, as under load: on SQLite the writer lingers for the next and gathers
/// batches; every sign-in is answered and written, and one that fails (its session id taken)
/// fails alone, whichever batch it fell into.
async fn a_stream_of_sign_ins(s: Store) {
    let s = Arc::new(s);
    let now = Utc::now();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut failed = Vec::new();
            for i in 0..25 {
                // Task 3's tenth sign-in reuses the session id of its ninth.
                let sid = if (t, i) == (3, 10) {
                    "s3-9".to_owned()
                } else {
                    format!("s{t}-{i}")
                };
                let w = sign_in(&sid, &format!("u{t}"), "a1", &format!("h{t}-{i}"), now, 1);
                if s.record_sign_in(&w).await.is_err() {
                    failed.push((t, i));
                }
                tokio::time::sleep(std::time::Duration::from_micros(200 * (i % 4))).await;
            }
            failed
        }));
    }
    let mut failed = Vec::new();
    for t in tasks {
        failed.extend(t.await.unwrap());
    }
    assert_eq!(failed, vec![(3, 10)], "only the reused session id fails");
    let [sessions, refresh, ..] = s.session_table_counts().await.unwrap();
    assert_eq!((sessions, refresh), (399, 399));
    assert!(s.get_session("s15-24").await.unwrap().is_some());
}

contract!(
    a_stream_of_sign_ins_is_written_whole,
    |s: Store| async move {
        a_stream_of_sign_ins(s).await;
    }
);

/// With one pooled connection (where the writer must not linger on it) a stream of sign-ins and
/// reads beside it all complete. That the reads are not kept waiting the linger's 5 ms is
/// `lead`'s idle-connection check; this test shows only that nothing is lost or stuck.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_of_sign_ins_on_one_connection() {
    let f = sqlite_pool(1).await;
    let reader = f.store.clone();
    let read = tokio::spawn(async move {
        for _ in 0..50 {
            reader.get_session("nobody").await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    });
    a_stream_of_sign_ins(f.store.clone()).await;
    read.await.unwrap();
}

// Casdoor's `p` may have 18 digits: p × pageSize then passes i64 (SQL's OFFSET) and must
// read as "past the end", not wrap negative (PostgreSQL refuses a negative OFFSET; SQLite
// reads it as the first page).
contract!(a_page_past_any_table_is_empty, |s: Store| async move {
    s.insert_organization(&org("demo")).await.unwrap();
    s.insert_user(&user("demo", "alice")).await.unwrap();
    s.insert_records(&[record("demo", "alice", "signin", "ok", Utc::now())])
        .await
        .unwrap();
    s.record_sign_in(&sign_in("a", "u1", "app", "h-a", Utc::now(), 1))
        .await
        .unwrap();
    for offset in [0, 10_000_000_000_000_000_000, u64::MAX] {
        let expect = usize::from(offset == 0);
        for search in [None, Some((UserSearch::Name, "ali".to_owned()))] {
            let q = UserQuery {
                owner: Some("demo".into()),
                search,
                offset,
                limit: 1000,
                ..Default::default()
            };
            let (users, total) = s.search_users(&q).await.unwrap();
            assert_eq!((users.len(), total), (expect, 1), "users at {offset}");
        }
        let q = RecordQuery {
            offset,
            limit: 1000,
            ..Default::default()
        };
        let (records, total) = s.list_records(&q).await.unwrap();
        assert_eq!((records.len(), total), (expect, 1), "records at {offset}");
        let q = SessionQuery {
            offset,
            limit: 1000,
            ..Default::default()
        };
        let (sessions, total) = s.list_sessions(&q, Utc::now()).await.unwrap();
        assert_eq!((sessions.len(), total), (expect, 1), "sessions at {offset}");
    }
});

// The default page is found by (created_time, name) from the index and then read by name: the
// rows come back in the index's order, not the table's or the names', on every page.
contract!(a_default_page_is_in_created_order, |s: Store| async move {
    s.insert_organization(&org("demo")).await.unwrap();
    let t0 = Utc::now() - chrono::Duration::days(1);
    // Inserted in neither order; created: dan, bea, cy, al, eve (al and eve at the same time).
    for (name, minutes) in [("al", 3), ("bea", 1), ("cy", 2), ("dan", 0), ("eve", 3)] {
        let mut u = user("demo", name);
        u.created_time = t0 + chrono::Duration::minutes(minutes);
        s.insert_user(&u).await.unwrap();
    }
    let page = |offset: u64, limit: u64, ascending: bool| {
        let s = s.clone();
        async move {
            let q = UserQuery {
                owner: Some("demo".into()),
                sort: Some((UserSort::CreatedTime, ascending)),
                offset,
                limit,
                ..Default::default()
            };
            let (users, _) = s.search_users(&q).await.unwrap();
            users.iter().map(|u| u.name.to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(page(0, 10, true).await, ["dan", "bea", "cy", "al", "eve"]);
    assert_eq!(page(1, 3, true).await, ["bea", "cy", "al"]);
    assert_eq!(page(0, 10, false).await, ["eve", "al", "cy", "bea", "dan"]);
    assert_eq!(page(3, 2, false).await, ["bea", "dan"]);
});

contract!(
    sessions_are_listed_limited_and_revoked,
    |s: Store| async move {
        let now = Utc::now();
        let t = |m: i64| now + chrono::Duration::milliseconds(m);
        for (i, sid) in ["a", "b", "c"].iter().enumerate() {
            let mut w = sign_in(sid, "u1", "app", &format!("h-{sid}"), t(i as i64), 1);
            w.max_sessions = 2;
            let ended = s.record_sign_in(&w).await.unwrap();
            if *sid == "c" {
                assert_eq!(ended, vec!["a".to_owned()], "the oldest ends");
            } else {
                assert!(ended.is_empty());
            }
        }
        // Other applications and users are not counted against the limit.
        let mut w = sign_in("d", "u1", "other-app", "h-d", t(3), 1);
        w.max_sessions = 1;
        assert!(s.record_sign_in(&w).await.unwrap().is_empty());
        s.record_sign_in(&sign_in("e", "u2", "app", "h-e", t(4), 1))
            .await
            .unwrap();

        let q = |user: Option<&str>, app: Option<&str>| SessionQuery {
            user_id: user.map(str::to_owned),
            application: app.map(str::to_owned),
            organization: Some("demo".into()),
            ..Default::default()
        };
        let (all, total) = s.list_sessions(&q(None, None), t(10)).await.unwrap();
        assert_eq!(total, 4);
        let ids: Vec<_> = all.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(
            ids,
            ["e", "d", "c", "b"],
            "newest first; the ended one is not listed"
        );
        let (page, total) = s
            .list_sessions(
                &SessionQuery {
                    offset: 1,
                    limit: 2,
                    ..q(None, None)
                },
                t(10),
            )
            .await
            .unwrap();
        assert_eq!((page.len(), total), (2, 4));
        assert_eq!(page[0].id, "d");
        assert_eq!(
            s.list_sessions(&q(Some("u1"), Some("app")), t(10))
                .await
                .unwrap()
                .1,
            2
        );
        assert_eq!(
            s.list_sessions(
                &SessionQuery {
                    organization: Some("elsewhere".into()),
                    ..Default::default()
                },
                t(10)
            )
            .await
            .unwrap()
            .1,
            0
        );

        let before = s
            .revocations_since(chrono::DateTime::UNIX_EPOCH, now)
            .await
            .unwrap();
        assert_eq!(before, vec![Revocation::Session("a".into())]);
        // "a" was ended at t(2), ahead of the clock: the cursor must come after it.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let cursor = Utc::now();
        let which = SessionSelector::User {
            user_id: "u1".into(),
            application: None,
        };
        let mut ended = s
            .revoke_sessions(&which, "signed out everywhere", Utc::now())
            .await
            .unwrap();
        ended.sort();
        assert_eq!(ended, ["b", "c", "d"]);
        assert!(
            s.revoke_sessions(&which, "again", Utc::now())
                .await
                .unwrap()
                .is_empty(),
            "revoking twice changes nothing"
        );
        assert!(
            s.revoke_sessions(&SessionSelector::One("e".into()), "x", Utc::now())
                .await
                .unwrap()
                == ["e"]
        );
        assert!(
            s.revoke_sessions(&SessionSelector::One("e".into()), "x", Utc::now())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.get_session("b").await.unwrap().unwrap().revoked_reason,
            "signed out everywhere"
        );
        let seen = s.revocations_since(cursor, Utc::now()).await.unwrap();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(seen.contains(&Revocation::Session("e".into())));

        // A session-less token is refused by its jti until it expires; recorded once.
        let exp = Utc::now() + chrono::Duration::minutes(5);
        s.revoke_jti("jti-1", exp, Utc::now()).await.unwrap();
        s.revoke_jti("jti-1", exp, Utc::now()).await.unwrap();
        let jtis: Vec<_> = s
            .revocations_since(cursor, Utc::now())
            .await
            .unwrap()
            .into_iter()
            .filter(|r| matches!(r, Revocation::Jti(..)))
            .collect();
        assert_eq!(jtis.len(), 1);
        assert!(
            matches!(&jtis[0], Revocation::Jti(j, e) if j == "jti-1" && e.timestamp() == exp.timestamp())
        );
    }
);

contract!(
    purge_deletes_what_expired_and_nothing_else,
    |s: Store| async move {
        let now = Utc::now();
        let past = now - chrono::Duration::hours(3);
        for i in 0..7 {
            s.record_sign_in(&sign_in(
                &format!("old-{i}"),
                "u1",
                "a1",
                &format!("old-{i}"),
                past,
                1,
            ))
            .await
            .unwrap();
        }
        s.record_sign_in(&sign_in("live", "u1", "a1", "live", now, 1))
            .await
            .unwrap();
        s.revoke_jti("gone", past, past).await.unwrap();
        s.revoke_jti("kept", now + chrono::Duration::hours(1), now)
            .await
            .unwrap();
        assert_eq!(s.session_table_counts().await.unwrap(), [8, 8, 2, 0]);

        // Bounded passes: at most `batch` rows per table each.
        let r = s
            .purge(now, now - chrono::Duration::days(90), 5)
            .await
            .unwrap();
        assert_eq!((r.sessions, r.refresh_tokens, r.revocations), (5, 5, 1));
        let r = s
            .purge(now, now - chrono::Duration::days(90), 5)
            .await
            .unwrap();
        assert_eq!((r.sessions, r.refresh_tokens, r.revocations), (2, 2, 0));
        assert_eq!(
            s.purge(now, now - chrono::Duration::days(90), 5)
                .await
                .unwrap()
                .total(),
            0,
            "nothing left to purge"
        );
        assert_eq!(s.session_table_counts().await.unwrap(), [1, 1, 1, 0]);
        assert!(s.get_session("live").await.unwrap().unwrap().is_active(now));
        assert!(s.get_refresh_token("live").await.unwrap().is_some());

        // Two purges at once (two nodes) delete each row once, without error.
        for i in 0..20 {
            s.record_sign_in(&sign_in(
                &format!("p-{i}"),
                "u1",
                "a1",
                &format!("p-{i}"),
                past,
                1,
            ))
            .await
            .unwrap();
        }
        let (a, b) = tokio::join!(
            s.purge(now, now - chrono::Duration::days(90), 50),
            s.purge(now, now - chrono::Duration::days(90), 50)
        );
        assert_eq!(a.unwrap().sessions + b.unwrap().sessions, 20);
        assert_eq!(s.session_table_counts().await.unwrap(), [1, 1, 1, 0]);
    }
);

contract!(a_large_seed_is_written_in_chunks, |s: Store| async move {
    // An `iam export` of many users: more than one chunk of users and identities, a user named
    // twice (the later one wins, under the earlier one's id) and an identity listed twice.
    let mut users: Vec<User> = (0..1_203).map(|i| user("demo", &format!("u{i}"))).collect();
    let mut again = user("demo", "u7");
    again.display_name = dn("Named twice");
    users.push(again);
    let mut identities: Vec<WechatIdentity> = users[..1_203]
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let mut id = identity("wx0123456789abcdef", &format!("o{i}"), "", "demo");
            id.user_id = u.id.clone();
            id
        })
        .collect();
    identities.push(identities[1_000].clone());
    let bundle = SeedBundle {
        organizations: vec![org("demo")],
        users,
        identities,
        ..Default::default()
    };
    let r = s.apply_seed(bundle.clone(), false).await.unwrap();
    assert_eq!(
        r,
        SeedReport {
            created: 1 + 1_203 + 1_203,
            replaced: 1,
            kept: 1
        }
    );
    assert_eq!(s.list_users(Some("demo")).await.unwrap().len(), 1_203);
    assert_eq!(s.list_wechat_identities().await.unwrap().len(), 1_203);
    let u7 = s.get_user("demo", "u7").await.unwrap().unwrap();
    assert_eq!(
        (u7.id.as_str(), u7.display_name.as_str()),
        (bundle.users[7].id.as_str(), "Named twice")
    );
    let stored = s.list_wechat_identities().await.unwrap();
    let o1100 = stored
        .iter()
        .find(|i| i.openid.as_str() == "o1100")
        .unwrap();
    assert_eq!(o1100.user_id, bundle.users[1_100].id);

    // Loaded again: every one of them kept, none written twice.
    let r = s.apply_seed(bundle.clone(), true).await.unwrap();
    assert_eq!(
        r,
        SeedReport {
            created: 0,
            replaced: 0,
            kept: 1 + 1_204 + 1_204
        }
    );
    assert_eq!(s.list_users(Some("demo")).await.unwrap().len(), 1_203);
});

contract!(
    an_export_reads_one_snapshot_a_page_at_a_time,
    |s: Store| async move {
        // Two organizations, one with more than two pages of users: every user once, in (owner,
        // name) order, each page with exactly its users' identities.
        let page = iam_domain::ports::EXPORT_PAGE;
        let mut users: Vec<User> = (0..2 * page + 1)
            .map(|i| user("demo", &format!("u{i:04}")))
            .collect();
        users.extend([user("shop", "b"), user("shop", "a")]);
        let mut identities: Vec<WechatIdentity> = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let mut id = identity("wx0123456789abcdef", &format!("o{i}"), "", u.owner.as_str());
                id.user_id = u.id.clone();
                id
            })
            .collect();
        let mut second = identity("wx00000000000000ff", "o-second", "", "shop");
        second.user_id = users[users.len() - 1].id.clone();
        identities.push(second);
        let bundle = SeedBundle {
            organizations: vec![org("shop"), org("demo")],
            users,
            identities,
            ..Default::default()
        };
        s.apply_seed(bundle, false).await.unwrap();
        let expected: Vec<String> = s
            .list_users(None)
            .await
            .unwrap()
            .iter()
            .map(|u| format!("{}/{}", u.owner, u.name))
            .collect();
        assert_eq!(expected.len(), 2 * page + 3);

        // A user added while the export runs is not in it: the read is one snapshot.
        let parts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (got, other, runtime) = (parts.clone(), s.clone(), tokio::runtime::Handle::current());
        let read = s
            .export(Box::new(move |p| {
                let mut got = got.lock().unwrap();
                if got.len() == 1 {
                    runtime
                        .block_on(other.insert_user(&user("demo", "u9999")))
                        .unwrap();
                }
                got.push(p);
                true
            }))
            .await
            .unwrap();
        assert!(read);
        let parts = std::mem::take(&mut *parts.lock().unwrap());
        let Some(ExportPart::Configuration(config)) = parts.first() else {
            panic!("the configuration comes first");
        };
        let orgs: Vec<&str> = config
            .organizations
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(orgs, ["demo", "shop"]);
        assert!(config.users.is_empty() && config.identities.is_empty());
        let (mut names, mut identities) = (Vec::new(), 0);
        for p in &parts[1..] {
            let ExportPart::Users {
                users,
                identities: ids,
            } = p
            else {
                panic!("only pages of users after the configuration: {p:?}");
            };
            assert!(!users.is_empty() && users.len() <= page, "{}", users.len());
            for i in ids {
                assert!(
                    users.iter().any(|u| u.id == i.user_id),
                    "{i:?} not of its page"
                );
            }
            identities += ids.len();
            names.extend(users.iter().map(|u| format!("{}/{}", u.owner, u.name)));
        }
        assert!(
            !names.iter().any(|n| n == "demo/u9999"),
            "the export saw a user added after it began"
        );
        assert!(names == expected, "every user once, in (owner, name) order");
        assert_eq!(identities, 2 * page + 4);
        assert_eq!(
            s.get_user("demo", "u9999")
                .await
                .unwrap()
                .map(|u| u.name.to_string())
                .as_deref(),
            Some("u9999")
        );

        // The taker going away stops the read where it is.
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let stopped = s
            .export(Box::new(move |_| {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0
            }))
            .await
            .unwrap();
        assert!(!stopped);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
);

fn cert(name: &str) -> Cert {
    Cert {
        name: n(name),
        display_name: DisplayName::default(),
        cert_type: "x509".into(),
        crypto_algorithm: CryptoAlgorithm::Rs256,
        bit_size: 2048,
        certificate: "-----BEGIN CERTIFICATE-----".into(),
        private_key: Secret::new("-----BEGIN PRIVATE KEY-----"),
        created_time: Utc::now(),
        extra: Default::default(),
    }
}

contract!(seed_is_all_or_nothing_and_new_only, |s: Store| async move {
    let mut bundle = SeedBundle {
        organizations: vec![org("demo")],
        providers: vec![provider("admin", "wx")],
        applications: vec![app(
            "demo-app",
            "demo",
            "6825f4f0af45554c8952",
            &["wx", "missing"],
        )],
        users: vec![user("demo", "alice")],
        certs: vec![cert("demo-cert")],
        identities: Vec::new(),
    };
    let err = s.apply_seed(bundle.clone(), true).await.unwrap_err();
    assert!(
        matches!(err, StoreError::MissingReference(ref m) if m.contains("missing")),
        "{err:?}"
    );
    assert!(
        s.get_organization("demo").await.unwrap().is_none(),
        "nothing is half-loaded"
    );
    assert!(s.get_cert("demo-cert").await.unwrap().is_none());

    bundle.applications[0].providers.pop();
    let r = s.apply_seed(bundle.clone(), true).await.unwrap();
    assert_eq!(
        r,
        SeedReport {
            created: 5,
            replaced: 0,
            kept: 0
        }
    );

    let alice = s.get_user("demo", "alice").await.unwrap().unwrap();
    let mut edited = bundle.clone();
    edited.organizations[0].display_name = dn("From file");
    edited.users[0].id = "another-id".into();
    let r = s.apply_seed(edited.clone(), true).await.unwrap();
    assert_eq!(
        r,
        SeedReport {
            created: 0,
            replaced: 0,
            kept: 5
        }
    );
    assert_eq!(
        s.get_organization("demo")
            .await
            .unwrap()
            .unwrap()
            .display_name,
        "demo org"
    );

    let r = s.apply_seed(edited.clone(), false).await.unwrap();
    assert_eq!(
        r,
        SeedReport {
            created: 0,
            replaced: 5,
            kept: 0
        }
    );
    assert_eq!(
        s.get_organization("demo")
            .await
            .unwrap()
            .unwrap()
            .display_name,
        "From file"
    );
    assert_eq!(
        s.get_user("demo", "alice").await.unwrap().unwrap().id,
        alice.id,
        "ids survive a reseed"
    );
});

/// An older server let a user's own update store any text as `homepage` (and the seed any
/// avatar), and display names before the zero-width rule: such a row reads back with its text
/// intact (the URL never shown as a link) and survives an unrelated update unchanged.
async fn legacy_values_survive(f: Fixture) {
    let s = &f.store;
    s.insert_organization(&org("legacy")).await.unwrap();
    let u = user("legacy", "old");
    s.insert_user(&u).await.unwrap();
    f.execute(&format!(
        "UPDATE users SET avatar = 'avatar.png', homepage = 'javascript:alert(1)', \
         display_name = 'a\u{200B}b', wechat_open_id = 'open id with spaces' WHERE id = '{}'",
        u.id
    ));
    f.execute("UPDATE organizations SET display_name = 'evil\u{202E}gpj' WHERE name = 'legacy'");
    let o = s.get_organization("legacy").await.unwrap().unwrap();
    assert_eq!(o.display_name.as_str(), "evil\u{202E}gpj");
    let mut back = s.get_user("legacy", "old").await.unwrap().unwrap();
    assert_eq!(back.avatar, WebUrl::Unchecked("avatar.png".into()));
    assert_eq!(back.avatar.url(), None);
    assert_eq!(back.profile.homepage.as_str(), "javascript:alert(1)");
    assert_eq!(back.profile.homepage.url(), None);
    assert_eq!(
        back.display_name.as_str(),
        "a\u{200B}b",
        "a name from before the rule"
    );
    assert_eq!(
        back.wechat_open_id.as_deref(),
        Some("open id with spaces"),
        "an id an administrator could once store"
    );
    assert_eq!(back.wechat, None, "empty is none");
    back.email = "old@example.com".into();
    assert!(s.update_user(&back).await.unwrap());
    let again = s.get_user("legacy", "old").await.unwrap().unwrap();
    assert_eq!(again.email, "old@example.com");
    assert_eq!(again.display_name.as_str(), "a\u{200B}b");
    assert_eq!(again.avatar.as_str(), "avatar.png");
    assert_eq!(again.profile.homepage.as_str(), "javascript:alert(1)");
    assert_eq!(again.wechat_open_id.as_deref(), Some("open id with spaces"));
}

mod legacy_values {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        legacy_values_survive(super::sqlite().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        if let Some(f) = super::postgres().await {
            legacy_values_survive(f).await;
        }
    }
}

/// Commits never checkpoint the SQLite log themselves (wal_autocheckpoint = 0), so without the
/// checkpointer it grows with every write; with it, it stays near its reset size.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sqlite_log_stays_bounded_only_with_the_checkpointer() {
    async fn write_users(s: &Store, prefix: &str) {
        s.insert_organization(&org(prefix)).await.expect("org");
        for n in 0..1500 {
            s.insert_user(&user(prefix, &format!("u{n}")))
                .await
                .expect("insert");
        }
    }
    let unchecked = sqlite().await;
    write_users(&unchecked.store, "grow").await;
    let grown = unchecked.store.wal_bytes();
    assert!(
        grown > 4 << 20,
        "the log grows without checkpoints: {grown} bytes"
    );

    let checked = sqlite().await;
    checked
        .store
        .spawn_checkpointer(std::time::Duration::from_millis(5), 256 << 10);
    let mut largest = 0;
    checked
        .store
        .insert_organization(&org("kept"))
        .await
        .expect("org");
    for n in 0..1500 {
        checked
            .store
            .insert_user(&user("kept", &format!("u{n}")))
            .await
            .expect("insert");
        largest = largest.max(checked.store.wal_bytes());
    }
    // Each user row is written with its indexes, so what one tick lets grow depends on the
    // machine (and on what else it runs: the whole suite runs beside this test). A restarted
    // log keeps its file and is written again from its start, so bounded means: the file stayed
    // well below what grows without the checkpointer, and is emptied once the writes stop.
    assert!(
        largest < grown / 2,
        "with the checkpointer the log stays near its reset size: at most {largest} bytes \
         (without it: {grown})"
    );
    let mut settled = checked.store.wal_bytes();
    for _ in 0..100 {
        if settled < 1 << 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        settled = checked.store.wal_bytes();
    }
    assert!(
        settled < 1 << 20,
        "once idle the log is reset: {settled} bytes"
    );
    assert_eq!(
        checked.store.count_users("kept").await.expect("count"),
        1500
    );
}

/// To restart the log the checkpointer holds the sign-in writer between batches (it needs the
/// write lock, which a stream of batches otherwise takes back before its polls find it free).
/// Under a stream of grouped sign-ins with a restart every few batches, every sign-in is
/// written and none is left waiting: the hold ends when the restart does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_ins_go_on_while_the_checkpointer_restarts_the_log() {
    let f = sqlite().await;
    f.store
        .spawn_checkpointer(std::time::Duration::from_millis(2), 16 << 10);
    let now = Utc::now();
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let s = f.store.clone();
            tokio::spawn(async move {
                for i in 0..150 {
                    let (sid, hash) = (format!("s{t}-{i}"), format!("h{t}-{i}"));
                    s.record_sign_in(&sign_in(&sid, "u1", "a1", &hash, now, 1))
                        .await
                        .expect("every sign-in is written");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("sign-in task");
    }
    for t in 0..16 {
        for i in 0..150 {
            let sid = format!("s{t}-{i}");
            assert!(
                f.store.get_session(&sid).await.unwrap().is_some(),
                "{sid} was written"
            );
        }
    }
}

/// The checkpointer counts the log in the database's own pages: a database of 64 KB pages (one
/// restored from elsewhere) restarts its log at the size it is given, not at a sixteenth of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_measured_in_the_database_s_own_pages() {
    use diesel::{Connection, connection::SimpleConnection};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("iam.db");
    let url = path.to_str().expect("utf-8 path");
    let mut c = diesel::SqliteConnection::establish(url).expect("create the file");
    c.batch_execute("PRAGMA page_size = 65536; CREATE TABLE probe (x); DROP TABLE probe;")
        .expect("64 KB pages");
    drop(c);
    let store = Store::open(Driver::Sqlite, url, 2).await.expect("open");
    store.migrate().await.expect("migrate");
    store.insert_organization(&org("big")).await.expect("org");
    for n in 0..8 {
        store
            .insert_user(&user("big", &format!("u{n}")))
            .await
            .expect("insert");
    }
    let log = store.wal_bytes();
    assert!(log > 1 << 20, "8 users in 64 KB pages: {log} bytes of log");
    assert!(
        store.checkpoint(log / 2, false).await.expect("checkpoint"),
        "a log of {log} bytes is past a reset size of {}",
        log / 2
    );
    assert!(
        !store.checkpoint(log, false).await.expect("checkpoint"),
        "a restarted log is not restarted again"
    );
}

/// The audit writer: records queued before a flush are all written when it returns; a full
/// queue drops (and counts) instead of waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_writer_flushes_what_it_queued_and_drops_when_full() {
    use iam_domain::ports::AuditSink;
    let f = sqlite().await;
    let repo: Arc<dyn Repository> = Arc::new(f.store.clone());
    let drops = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = drops.clone();
    let (writer, _task) = iam_store::RecordWriter::spawn(
        repo,
        100_000,
        Arc::new(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }),
    );
    let now = Utc::now();
    for i in 0..2000 {
        writer.record(record(
            "demo",
            &format!("u{i}"),
            "signin-password",
            "ok",
            now,
        ));
    }
    writer.flush().await;
    assert_eq!(
        f.store
            .list_records(&RecordQuery::default())
            .await
            .unwrap()
            .1,
        2000
    );
    assert_eq!(writer.dropped(), 0);

    let (tiny, _task) =
        iam_store::RecordWriter::spawn(Arc::new(f.store.clone()), 1, Arc::new(|| {}));
    for i in 0..500 {
        tiny.record(record(
            "demo",
            &format!("t{i}"),
            "signin-password",
            "ok",
            now,
        ));
    }
    assert!(tiny.dropped() > 0, "a full queue drops rather than waits");
    tiny.flush().await;
    let written = f
        .store
        .list_records(&RecordQuery::default())
        .await
        .unwrap()
        .1;
    assert_eq!(
        written + tiny.dropped(),
        2500,
        "every record is written or counted"
    );
}

/// Under a stream of records (every client_credentials token is one) the writer commits at most
/// once per `PAUSE`, taking what queued meanwhile, instead of once per record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_writer_commits_a_stream_in_few_transactions() {
    use iam_domain::ports::AuditSink;
    let f = sqlite().await;
    let (writer, _task) =
        iam_store::RecordWriter::spawn(Arc::new(f.store.clone()), 1000, Arc::new(|| {}));
    let before = f.store.statements_sent();
    let started = std::time::Instant::now();
    let now = Utc::now();
    for i in 0..60 {
        writer.record(record(
            "demo",
            &format!("s{i}"),
            "signin-password",
            "ok",
            now,
        ));
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    writer.flush().await;
    let elapsed = started.elapsed();
    // On SQLite each record is one INSERT; each transaction adds its BEGIN and COMMIT.
    let sent = f.store.statements_sent() - before;
    assert!(sent >= 60, "each record is one INSERT: {sent} statements");
    let commits = (sent - 60) / 2;
    let most = elapsed.as_millis() / iam_store::RecordWriter::PAUSE.as_millis() + 2;
    assert!(
        u128::from(commits) <= most,
        "{commits} commits for 60 records in {elapsed:?}: at most one per {:?} ({most})",
        iam_store::RecordWriter::PAUSE
    );
    assert_eq!(
        f.store
            .list_records(&RecordQuery::default())
            .await
            .expect("records")
            .1,
        60
    );
}

contract!(one_access_token_lease_at_a_time, |s: Store| async move {
    let appid = "wx5f3c1b2a9d8e7f60";
    assert!(s.get_access_token(appid).await.unwrap().is_none());
    // Eight nodes race for the first lease: exactly one takes it.
    let mut tasks = Vec::new();
    for n in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.lease_access_token(appid, &format!("node-{n}"), 0, 1_000, 16_000)
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1, "one lease");
    let row = s.get_access_token(appid).await.unwrap().unwrap();
    assert_eq!((row.sealed, row.version), (None, 0));
    // Only the holder stores; the version counts refreshes.
    let holder = {
        let mut h = String::new();
        for n in 0..8 {
            if s.put_access_token(appid, &format!("node-{n}"), b"t1", 5_000, 7_000)
                .await
                .unwrap()
                .is_some()
            {
                h = format!("node-{n}");
            }
        }
        h
    };
    assert!(!holder.is_empty());
    let row = s.get_access_token(appid).await.unwrap().unwrap();
    assert_eq!(row.sealed.as_deref(), Some(&b"t1"[..]));
    assert_eq!(
        (row.version, row.refresh_at, row.expires_at),
        (1, 5_000, 7_000)
    );
    // A lease at a version already replaced is refused; at the current one it is taken.
    assert!(
        !s.lease_access_token(appid, "late", 0, 2_000, 17_000)
            .await
            .unwrap()
    );
    assert!(
        s.lease_access_token(appid, "b", 1, 2_000, 17_000)
            .await
            .unwrap()
    );
    assert!(
        !s.lease_access_token(appid, "c", 1, 3_000, 18_000)
            .await
            .unwrap(),
        "held"
    );
    // A crashed holder's lease runs out.
    assert!(
        s.lease_access_token(appid, "c", 1, 17_001, 32_000)
            .await
            .unwrap()
    );
    assert!(
        s.put_access_token(appid, "b", b"late", 1, 1)
            .await
            .unwrap()
            .is_none(),
        "the lapsed holder stores nothing"
    );
    s.release_access_token(appid, "c").await.unwrap();
    // A refusal expires the version it was seen with, once; an old version changes nothing.
    assert!(!s.expire_access_token(appid, 0).await.unwrap());
    assert!(s.expire_access_token(appid, 1).await.unwrap());
    assert!(
        !s.expire_access_token(appid, 1).await.unwrap(),
        "already expired"
    );
    let row = s.get_access_token(appid).await.unwrap().unwrap();
    assert_eq!((row.version, row.refresh_at, row.expires_at), (1, 0, 0));
    assert!(
        s.lease_access_token(appid, "d", 1, 40_000, 55_000)
            .await
            .unwrap()
    );
    assert_eq!(
        s.put_access_token(appid, "d", b"t2", 9, 9).await.unwrap(),
        Some(2)
    );
});

/// A stand-in for the AES-GCM sealer (tested in iam-jwt): bound to its context, reversible.
struct TestSealer;

impl iam_domain::ports::SessionSealer for TestSealer {
    fn seal(&self, a: &str, b: &str, secret: &Secret) -> Result<Vec<u8>, String> {
        let mut v = format!("{a}|{b}|").into_bytes();
        v.extend(secret.expose().bytes().rev());
        Ok(v)
    }

    fn open(&self, a: &str, b: &str, sealed: &[u8]) -> Result<Secret, String> {
        let rest = sealed
            .strip_prefix(format!("{a}|{b}|").as_bytes())
            .ok_or("another context")?;
        String::from_utf8(rest.iter().rev().copied().collect())
            .map(Secret::new)
            .map_err(|e| e.to_string())
    }
}

contract!(
    secrets_are_sealed_at_rest_and_old_plaintext_is_sealed_in_place,
    |plain: Store| async move {
        // What an older version wrote: plaintext.
        plain.insert_organization(&org("demo")).await.unwrap();
        plain
            .insert_provider(&provider("admin", "wx"))
            .await
            .unwrap();
        plain.insert_cert(&cert("k")).await.unwrap();
        plain
            .insert_application(&app("demo-app", "demo", "client-1", &["wx"]))
            .await
            .unwrap();
        let sealed = plain.clone().with_sealer(Arc::new(TestSealer));
        assert_eq!(
            sealed
                .get_application("demo-app")
                .await
                .unwrap()
                .unwrap()
                .client_secret
                .expose(),
            "s3cret",
            "plaintext reads as it is"
        );
        assert_eq!(sealed.seal_plaintext_secrets().await.unwrap(), 3);
        assert_eq!(sealed.seal_plaintext_secrets().await.unwrap(), 0, "once");
        // Sealed now: a store without the key cannot read them, and says why.
        let err = plain.get_application("demo-app").await.unwrap_err();
        assert!(err.to_string().contains("without the sealing key"), "{err}");
        assert!(plain.get_cert("k").await.is_err());
        assert!(plain.list_providers(None).await.is_err());
        // With the key every secret opens as it was.
        let a = sealed
            .get_application_by_client_id("client-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.client_secret.expose(), "s3cret");
        let p = sealed.get_provider("admin", "wx").await.unwrap().unwrap();
        assert_eq!(p.client_secret.expose(), "0c6d2a1b9e8f7d6c5b4a39281706f5e4");
        let c = sealed.list_certs().await.unwrap();
        assert_eq!(c[0].private_key.expose(), "-----BEGIN PRIVATE KEY-----");
        // New writes are sealed, updates too; the seed path as well.
        let mut p2 = provider("admin", "wx2");
        p2.client_secret = Secret::new("second-secret");
        sealed.insert_provider(&p2).await.unwrap();
        assert!(plain.get_provider("admin", "wx2").await.is_err());
        p2.client_secret = Secret::new("third-secret");
        assert!(sealed.update_provider(&p2).await.unwrap());
        assert_eq!(provider_secret(&sealed, "wx2").await, "third-secret");
        // A secret spelt like a sealed one is still just a secret: sealed, and read back as it was.
        p2.client_secret = Secret::new("sealed:v1:zz");
        assert!(sealed.update_provider(&p2).await.unwrap());
        assert_eq!(provider_secret(&sealed, "wx2").await, "sealed:v1:zz");
        let bundle = SeedBundle {
            certs: vec![cert("k2")],
            ..Default::default()
        };
        sealed.apply_seed(bundle.clone(), true).await.unwrap();
        assert!(plain.get_cert("k2").await.is_err());
        assert_eq!(
            sealed
                .get_cert("k2")
                .await
                .unwrap()
                .unwrap()
                .private_key
                .expose(),
            "-----BEGIN PRIVATE KEY-----"
        );
    }
);

contract!(statements_sent_are_counted, |s: Store| async move {
    let before = s.statements_sent();
    s.get_organization("nobody").await.unwrap();
    assert_eq!(s.statements_sent() - before, 1, "one read, one statement");
    let before = s.statements_sent();
    s.insert_organization(&org("counted")).await.unwrap();
    assert!(s.statements_sent() > before);
});

contract!(
    a_sign_in_moves_the_sign_in_time_or_the_whole_profile,
    |s: Store| async move {
        s.insert_organization(&org("demo")).await.unwrap();
        let alice = user("demo", "alice");
        s.insert_user(&alice).await.unwrap();
        let at = Utc::now() + chrono::Duration::minutes(5);
        let mut w = sign_in("t1", &alice.id, "a1", "t1", at, 1);
        w.user = iam_domain::model::UserTouch::SignedIn {
            user_id: alice.id.clone(),
            at,
        };
        s.record_sign_in(&w).await.unwrap();
        let stored = s.get_user("demo", "alice").await.unwrap().unwrap();
        assert_eq!(
            stored.last_signin_time.map(|t| t.timestamp_millis()),
            Some(at.timestamp_millis())
        );
        assert_eq!(
            stored.updated_time.timestamp_millis(),
            at.timestamp_millis()
        );
        assert_eq!(stored.display_name, alice.display_name, "profile untouched");

        let mut changed = stored.clone();
        changed.display_name = dn("Alice Changed");
        let mut w = sign_in("t2", &alice.id, "a1", "t2", at, 1);
        w.user = iam_domain::model::UserTouch::Profile(Box::new(changed));
        s.record_sign_in(&w).await.unwrap();
        let stored = s.get_user("demo", "alice").await.unwrap().unwrap();
        assert_eq!(stored.display_name, dn("Alice Changed"));
    }
);

contract!(
    a_first_sign_in_creates_its_user_in_its_own_write_or_nothing,
    |s: Store| async move {
        s.insert_organization(&org("demo")).await.unwrap();
        let ident = identity("wx1", "o-first", "", "demo");
        let create = |sid: &str| {
            let u = wechat_user("demo", &ident);
            let mut i = ident.clone();
            i.user_id = u.id.clone();
            let mut w = sign_in(sid, &u.id, "a1", sid, Utc::now(), 1);
            w.user = iam_domain::model::UserTouch::Create {
                user: Box::new(u.clone()),
                identity: Box::new(i),
            };
            (u, w)
        };
        let (first, w) = create("c1");
        s.record_sign_in(&w).await.unwrap();
        match s
            .find_or_create_wechat_user(&signin(&ident, None), None)
            .await
            .unwrap()
        {
            iam_domain::model::WechatUserOutcome::Found { user, .. } => {
                assert_eq!(user.id, first.id)
            }
            other => panic!("the created user is found by the identity: {other:?}"),
        }
        assert!(s.get_session("c1").await.unwrap().is_some());

        // Another sign-in that read "not found" before the first committed: a conflict, and
        // neither its user nor its session is written.
        let (second, w) = create("c2");
        let e = s.record_sign_in(&w).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
        assert!(s.get_session("c2").await.unwrap().is_none(), "no session");
        let users = s.list_users(Some("demo")).await.unwrap();
        assert_eq!(users.len(), 1, "no second user");
        assert_ne!(users[0].id, second.id);
    }
);

contract!(
    concurrent_sign_ins_commit_together_and_fail_alone,
    |s: Store| async move {
        let now = Utc::now();
        s.record_sign_in(&sign_in("taken", "u0", "a1", "h-taken", now, 1))
            .await
            .unwrap();
        // Forty sign-ins at once (on SQLite they share transactions), two of them reusing the
        // taken session id: those two fail with a conflict, write nothing, and sink no other.
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let s = s.clone();
                let sid = if i % 20 == 7 {
                    "taken".to_owned()
                } else {
                    format!("s{i}")
                };
                tokio::spawn(async move {
                    let r = s
                        .record_sign_in(&sign_in(&sid, "u1", "a1", &format!("h{i}"), now, 1))
                        .await;
                    (i, sid, r)
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            let (i, sid, r) = t.await.unwrap();
            if sid == "taken" {
                assert!(matches!(r, Err(StoreError::Conflict(_))), "{i}: {r:?}");
                assert!(
                    s.get_refresh_token(&format!("h{i}"))
                        .await
                        .unwrap()
                        .is_none(),
                    "a failed sign-in leaves no refresh token"
                );
            } else {
                r.unwrap();
                assert!(s.get_session(&sid).await.unwrap().is_some());
                assert!(
                    s.get_refresh_token(&format!("h{i}"))
                        .await
                        .unwrap()
                        .is_some()
                );
                ok += 1;
            }
        }
        assert_eq!(ok, 38);
    }
);

/// The client secret `store` reads back for provider `admin/name`.
async fn provider_secret(store: &Store, name: &str) -> String {
    store
        .get_provider("admin", name)
        .await
        .unwrap()
        .unwrap()
        .client_secret
        .expose()
        .to_owned()
}
