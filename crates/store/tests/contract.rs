//! The repository contract. Every test runs on SQLite, and on PostgreSQL when
//! `IAM_TEST_POSTGRES_URL` is set (each test in a database of its own, dropped afterwards).

use std::sync::Arc;

use chrono::Utc;
use diesel::Connection;
use diesel::connection::SimpleConnection;
use iam_domain::model::*;
use iam_domain::ports::Repository;
use iam_domain::values::CryptoAlgorithm;
use iam_domain::{Secret, StoreError};
use iam_store::{Driver, Store};

/// A store on a fresh database, and what must be cleaned up after.
struct Fixture {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
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
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("iam.db");
    let store = Store::open(Driver::Sqlite, path.to_str().expect("utf-8 path"), 8)
        .await
        .expect("open sqlite");
    store.migrate().await.expect("migrate");
    Fixture {
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
        display_name: format!("{name} org"),
        default_avatar: "https://cdn.example.com/default.png".into(),
        created_time: Utc::now(),
        extra: Default::default(),
    }
}

fn provider(owner: &str, name: &str) -> Provider {
    Provider {
        owner: n(owner),
        name: n(name),
        display_name: String::new(),
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
        display_name: String::new(),
        organization: n(org),
        client_id: iam_domain::values::ClientId::parse(client_id).unwrap(),
        client_secret: Secret::new("s3cret"),
        cert: String::new(),
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
        avatar: String::new(),
        email: String::new(),
        phone: String::new(),
        country_code: String::new(),
        is_admin: false,
        is_forbidden: false,
        is_deleted: false,
        signup_application: String::new(),
        wechat: String::new(),
        wechat_open_id: String::new(),
        wechat_union_id: String::new(),
        password_hash: None,
        profile: Profile::default(),
        created_time: now,
        updated_time: now,
        last_signin_time: None,
    }
}

fn identity(appid: &str, openid: &str, unionid: &str, org: &str) -> WechatIdentity {
    WechatIdentity {
        appid: appid.into(),
        openid: openid.into(),
        unionid: unionid.into(),
        organization: org.into(),
        user_id: String::new(),
        created_time: Utc::now(),
    }
}

fn wechat_user(org: &str, ident: &WechatIdentity) -> User {
    let mut u = user(org, &format!("wechat-{}", ident.openid));
    u.wechat = ident.openid.clone();
    u.wechat_open_id = ident.openid.clone();
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
    changed.display_name = "Renamed".into();
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
    assert!(s.update_user(&alice).await.unwrap());
    let back = s.get_user("demo", "alice").await.unwrap().unwrap();
    assert_eq!(back.display_name, "Alice B");
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
                s.find_or_create_wechat_user(&ident, Some(offer(proposal)))
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
                WechatUserOutcome::Found(u) => {
                    ids.insert(u.id);
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
        .find_or_create_wechat_user(&first, Some(offer(wechat_user("demo", &first))))
        .await
        .unwrap();
    let WechatUserOutcome::Created(u) = created else {
        panic!("{created:?}")
    };
    let second = identity("wxbbbbbbbbbbbbbbbb", "oBBBB", "oUNION", "demo");
    let linked = s
        .find_or_create_wechat_user(&second, Some(offer(wechat_user("demo", &second))))
        .await
        .unwrap();
    assert!(
        matches!(linked, WechatUserOutcome::Linked(ref l) if l.id == u.id),
        "{linked:?}"
    );
    let again = s.find_or_create_wechat_user(&second, None).await.unwrap();
    assert!(
        matches!(again, WechatUserOutcome::Found(ref f) if f.id == u.id),
        "{again:?}"
    );
    assert_eq!(s.count_users("demo").await.unwrap(), 1);
    // Another organization does not see this unionid.
    s.insert_organization(&org("other")).await.unwrap();
    let elsewhere = identity("wxcccccccccccccccc", "oCCCC", "oUNION", "other");
    assert_eq!(
        s.find_or_create_wechat_user(&elsewhere, None)
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

contract!(refresh_tokens_rotate_once, |s: Store| async move {
    let now = Utc::now();
    let t = TokenRecord {
        id: "t1".into(),
        application: "a1".into(),
        organization: "demo".into(),
        user_id: "u1".into(),
        access_token_hash: "ah1".into(),
        refresh_token_hash: Some("rh1".into()),
        family: "f1".into(),
        scope: "openid".into(),
        token_type: "Bearer".into(),
        expires_at: now,
        refresh_expires_at: Some(now),
        created_time: now,
        revoked: false,
        refresh_used: false,
    };
    s.insert_token(&t).await.unwrap();
    s.insert_token(&TokenRecord {
        id: "t2".into(),
        access_token_hash: "ah2".into(),
        refresh_token_hash: None,
        ..t.clone()
    })
    .await
    .unwrap();
    assert!(matches!(
        s.insert_token(&t).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.get_token_by_refresh_hash("rh1")
            .await
            .unwrap()
            .unwrap()
            .id,
        "t1"
    );
    assert!(s.claim_refresh("t1").await.unwrap());
    assert!(
        !s.claim_refresh("t1").await.unwrap(),
        "a refresh token is used once"
    );
    assert_eq!(s.revoke_family("f1").await.unwrap(), 2);
    assert!(
        s.get_token_by_access_hash("ah2")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
});

fn cert(name: &str) -> Cert {
    Cert {
        name: n(name),
        display_name: String::new(),
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
    let err = s.apply_seed(&bundle, true).await.unwrap_err();
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
    let r = s.apply_seed(&bundle, true).await.unwrap();
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
    edited.organizations[0].display_name = "From file".into();
    edited.users[0].id = "another-id".into();
    let r = s.apply_seed(&edited, true).await.unwrap();
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

    let r = s.apply_seed(&edited, false).await.unwrap();
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
    assert!(
        largest < 2 << 20,
        "with the checkpointer the log stays near its reset size: at most {largest} bytes"
    );
    assert_eq!(
        checked.store.count_users("kept").await.expect("count"),
        1500
    );
}
