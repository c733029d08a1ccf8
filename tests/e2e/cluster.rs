//! The three-node drill (SPEC §12): three `iam` nodes on one PostgreSQL and one `wechat-sim`,
//! requests spread over the nodes as a load balancer spreads them. First sign-ins racing on
//! every node, a node killed mid-burst and restarted, an access token WeChat stops accepting,
//! a lockout counted on all three, a revocation seen by all three.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use iam_domain::ports::Repository;
use iam_e2e::{Answer, Db, Iam, IamOptions, Recorder, WechatSim, workspace_root, wx_login};
use serde_json::{Value, json};

use crate::lockout::LOCKED;
use crate::signin::{APPID, CLIENT_ID};

/// Nodes behind one name share the issuer their tokens carry.
const ORIGIN: &str = "https://iam.cluster.test";
/// The demo mini program's AppSecret in the simulator (and in the fixture).
const APPSECRET: &str = "0c6d2a1b9e8f7d6c5b4a39281706f5e4";

struct Cluster {
    db: Db,
    sim: WechatSim,
    nodes: Vec<Option<Iam>>,
    rec: Recorder,
}

impl Cluster {
    fn options(&self) -> IamOptions<'_> {
        let mut opts = IamOptions::new(&self.db);
        opts.wechat_api_base = self.sim.base.clone();
        opts.init_data = Some(workspace_root().join("tests/e2e/fixtures/init_data.json"));
        opts.extra_env.push(("origin".into(), ORIGIN.into()));
        opts
    }

    async fn start() -> anyhow::Result<Option<Self>> {
        let Some(db) = Db::postgres()? else {
            return Ok(None);
        };
        let mut c = Self {
            db,
            sim: WechatSim::start()?,
            nodes: Vec::new(),
            rec: Recorder::default(),
        };
        for _ in 0..3 {
            let node = Iam::start(&c.options())?;
            c.nodes.push(Some(node));
        }
        Ok(Some(c))
    }

    /// The base URLs of the nodes that are up.
    fn bases(&self) -> Vec<String> {
        self.nodes
            .iter()
            .flatten()
            .map(|n| n.base.clone())
            .collect()
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        self.rec.send(req).await
    }

    async fn password(&self, base: &str, user: &str, pw: &str) -> anyhow::Result<Answer> {
        self.send(self.rec.http.post(format!("{base}/oauth/token")).form(&[
            ("grant_type", "password"),
            ("client_id", CLIENT_ID),
            ("username", user),
            ("password", pw),
        ]))
        .await
    }

    async fn status_with(&self, base: &str, bearer: &str) -> anyhow::Result<u16> {
        Ok(self
            .send(
                self.rec
                    .http
                    .get(format!("{base}/api/get-account"))
                    .bearer_auth(bearer),
            )
            .await?
            .status)
    }

    async fn stable_token_calls(&self) -> anyhow::Result<u64> {
        let v: Value = reqwest::get(format!("{}/sim/stats", self.sim.base))
            .await?
            .json()
            .await?;
        Ok(v["calls"]["stable_token"].as_u64().unwrap_or(0))
    }

    async fn users_and_identities(&self) -> anyhow::Result<(i64, usize)> {
        let store = self.db.store().await?;
        Ok((
            store.count_users("demo").await?,
            store.list_wechat_identities().await?.len(),
        ))
    }
}

/// A mini program sign-in of `person` on `base`: its access token, or why not.
async fn sign_in(
    rec: &Recorder,
    sim: &str,
    base: &str,
    person: &str,
    extra: &[(&str, String)],
) -> anyhow::Result<Result<String, String>> {
    let code = wx_login(&rec.http, sim, APPID, person).await?;
    let mut form = vec![
        ("tag", "wechat_miniprogram".to_owned()),
        ("client_id", CLIENT_ID.to_owned()),
        ("code", code),
    ];
    form.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    let a = match rec
        .send(rec.http.post(format!("{base}/oauth/token")).form(&form))
        .await
    {
        Ok(a) => a,
        Err(e) => return Ok(Err(format!("{e:#}"))),
    };
    Ok(match a.json()["access_token"].as_str() {
        Some(t) if a.status == 200 => Ok(t.to_owned()),
        _ => Err(format!("{} {}", a.status, a.text)),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_postgres() -> anyhow::Result<()> {
    let Some(mut c) = Cluster::start().await? else {
        return Ok(());
    };
    first_sign_ins_race_on_every_node(&c).await?;
    one_access_token_for_the_cluster(&c).await?;
    a_lockout_holds_on_every_node(&c).await?;
    a_revocation_reaches_every_node(&c).await?;
    a_node_killed_mid_burst(&mut c).await?;
    Ok(())
}

/// 200 people × 3 concurrent first sign-ins, one on each node: exactly 200 users and 200
/// identities, and every answered token works on every node.
async fn first_sign_ins_race_on_every_node(c: &Cluster) -> anyhow::Result<()> {
    let (users_before, identities_before) = c.users_and_identities().await?;
    let bases = c.bases();
    let mut tasks = Vec::new();
    for p in 0..200 {
        for base in &bases {
            let (rec, sim, base) = (c.rec.clone(), c.sim.base.clone(), base.clone());
            tasks.push(tokio::spawn(async move {
                let person = format!("racer-{p}");
                let token = sign_in(&rec, &sim, &base, &person, &[]).await?;
                anyhow::Ok((person, token))
            }));
        }
    }
    let mut tokens = Vec::new();
    for t in tasks {
        match t.await?? {
            (person, Ok(token)) => tokens.push((person, token)),
            (person, Err(why)) => anyhow::bail!("a first sign-in of {person} failed: {why}"),
        }
    }
    let (users, identities) = c.users_and_identities().await?;
    assert_eq!(users - users_before, 200, "one user per person");
    assert_eq!(
        identities - identities_before,
        200,
        "one identity per person"
    );
    // Every token on every node: same subject whichever node answered the sign-in.
    let mut subjects: HashMap<String, HashSet<String>> = HashMap::new();
    for (person, token) in &tokens {
        let sub = iam_e2e::claims(token)?["sub"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        subjects.entry(person.clone()).or_default().insert(sub);
    }
    assert_eq!(subjects.len(), 200);
    assert!(
        subjects.values().all(|s| s.len() == 1),
        "one subject per person, whichever node answered"
    );
    let mut checks = Vec::new();
    for (_, token) in tokens {
        for base in &bases {
            let (rec, base, token) = (c.rec.clone(), base.clone(), token.clone());
            checks.push(tokio::spawn(async move {
                let a = rec
                    .send(
                        rec.http
                            .get(format!("{base}/api/get-account"))
                            .bearer_auth(&token),
                    )
                    .await?;
                anyhow::ensure!(a.status == 200, "{base}: {} {}", a.status, a.text);
                Ok(())
            }));
        }
    }
    for check in checks {
        check.await??;
    }
    Ok(())
}

/// The phone number route needs WeChat's access token: the three nodes share one. WeChat then
/// stops accepting it (someone force-refreshed it): the cluster refreshes it once.
async fn one_access_token_for_the_cluster(c: &Cluster) -> anyhow::Result<()> {
    let bases = c.bases();
    let phone_sign_in = |base: String, person: String, phone: &'static str| {
        let (rec, sim) = (c.rec.clone(), c.sim.base.clone());
        async move {
            let v: Value = rec
                .http
                .post(format!("{sim}/sim/phone-code"))
                .json(&json!({"appid": APPID, "user": person, "phone": phone}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let pc = v["code"].as_str().unwrap_or_default().to_owned();
            sign_in(&rec, &sim, &base, &person, &[("phone_code", pc)]).await
        }
    };
    let before = c.stable_token_calls().await?;
    for (n, base) in bases.iter().enumerate() {
        phone_sign_in(base.clone(), format!("phone-{n}"), "13800138001")
            .await?
            .map_err(|e| anyhow::anyhow!("phone sign-in on {base}: {e}"))?;
    }
    assert_eq!(
        c.stable_token_calls().await? - before,
        1,
        "three nodes, one stable_token call"
    );
    // Someone else force-refreshes the token: the one every node holds is now refused (40001).
    let forced = c
        .rec
        .http
        .post(format!("{}/cgi-bin/stable_token", c.sim.base))
        .json(&json!({"grant_type": "client_credential", "appid": APPID,
                      "secret": APPSECRET, "force_refresh": true}))
        .send()
        .await?;
    let forced: Value = forced.json().await?;
    anyhow::ensure!(forced["access_token"].is_string(), "{forced}");
    let before = c.stable_token_calls().await?;
    let (a, b, d) = tokio::join!(
        phone_sign_in(bases[0].clone(), "phone-a".into(), "13800138002"),
        phone_sign_in(bases[1].clone(), "phone-b".into(), "13800138003"),
        phone_sign_in(bases[2].clone(), "phone-c".into(), "13800138004"),
    );
    for r in [a, b, d] {
        r?.map_err(|e| anyhow::anyhow!("after the refusal: {e}"))?;
    }
    assert_eq!(
        c.stable_token_calls().await? - before,
        1,
        "one refresh for the cluster after WeChat refused the token"
    );
    let stats: Value = reqwest::get(format!("{}/sim/stats", c.sim.base))
        .await?
        .json()
        .await?;
    assert_eq!(
        stats["errcodes"]["getuserphonenumber"]["40001"], 3,
        "each node met the refusal once: {stats}"
    );
    Ok(())
}

/// Five wrong passwords spread over the nodes lock the account on all of them; the right one
/// is refused then; an administrator's reset opens it on all of them.
async fn a_lockout_holds_on_every_node(c: &Cluster) -> anyhow::Result<()> {
    let bases = c.bases();
    for n in 0..5 {
        let a = c.password(&bases[n % 3], "bob", "wrong").await?;
        assert_eq!(a.status, 400, "{}", a.text);
    }
    for base in &bases {
        let a = c.password(base, "bob", "bob-pw").await?;
        assert_eq!(a.status, 400, "{base}: {}", a.text);
        let said = a.json()["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(said.starts_with(LOCKED), "{base}: {}", a.text);
    }
    let admin = c.password(&bases[0], "demo-admin", "demo-admin-pw").await?;
    let admin = admin.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let reset = c
        .send(
            c.rec
                .http
                .post(format!("{}/api/update-user?id=demo/bob", bases[1]))
                .bearer_auth(&admin)
                .json(&json!({"signinWrongTimes": 0})),
        )
        .await?;
    assert_eq!(reset.status, 200, "{}", reset.text);
    for base in &bases {
        let a = c.password(base, "bob", "bob-pw").await?;
        assert_eq!(a.status, 200, "{base}: {}", a.text);
    }
    Ok(())
}

/// A session revoked on one node is refused on the others within a second.
async fn a_revocation_reaches_every_node(c: &Cluster) -> anyhow::Result<()> {
    let bases = c.bases();
    let token = sign_in(&c.rec, &c.sim.base, &bases[0], "revoked-person", &[])
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for base in &bases {
        assert_eq!(c.status_with(base, &token).await?, 200);
    }
    let sid = iam_e2e::claims(&token)?["sid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let revoked = c
        .send(
            c.rec
                .http
                .post(format!("{}/api/revoke-session?sid={sid}", bases[0]))
                .bearer_auth(&token),
        )
        .await?;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let start = Instant::now();
    for base in &bases[1..] {
        loop {
            if c.status_with(base, &token).await? == 401 {
                break;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(1),
                "{base} still accepts a revoked session after a second"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!(
        "a revocation reached every node within {:?}",
        start.elapsed()
    );
    Ok(())
}

/// `kill -9` of one node while sign-ins are spread over all three: a client whose node dies
/// tries the next, as a load balancer would. No answered token is lost, no one is duplicated,
/// and a node restarted on the same database rejoins.
async fn a_node_killed_mid_burst(c: &mut Cluster) -> anyhow::Result<()> {
    let (users_before, _) = c.users_and_identities().await?;
    let bases = c.bases();
    let mut tasks = Vec::new();
    for i in 0..30 {
        let (rec, sim, bases) = (c.rec.clone(), c.sim.base.clone(), bases.clone());
        tasks.push(tokio::spawn(async move {
            let mut answered = Vec::new();
            let mut failed_over = 0;
            for round in 0..20 {
                let person = format!("burst-{}", (i + round) % 60);
                let first = (i + round) % 3;
                for attempt in 0..3 {
                    let base = &bases[(first + attempt) % 3];
                    match sign_in(&rec, &sim, base, &person, &[]).await? {
                        Ok(token) => {
                            answered.push((person.clone(), token));
                            break;
                        }
                        Err(_) => failed_over += 1,
                    }
                }
            }
            anyhow::Ok((answered, failed_over))
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    if let Some(node) = c.nodes[2].as_mut() {
        node.proc.kill9()?;
    }
    let mut answered = Vec::new();
    let mut failed_over = 0;
    for t in tasks {
        let (a, f) = t.await??;
        answered.extend(a);
        failed_over += f;
    }
    eprintln!(
        "burst: {} sign-ins answered, {failed_over} retried on another node",
        answered.len()
    );
    assert_eq!(answered.len(), 600, "every sign-in answered by some node");
    c.nodes[2] = None;
    c.nodes[2] = Some(Iam::start(&c.options())?);
    let (users, _) = c.users_and_identities().await?;
    let people: HashSet<&str> = answered.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        (users - users_before) as usize,
        people.len(),
        "one user per person"
    );
    for (person, token) in &answered {
        for base in c.bases() {
            assert_eq!(
                c.status_with(&base, token).await?,
                200,
                "{person}'s token on {base}"
            );
        }
    }
    // The restarted node signs people in.
    let back = c.bases()[2].clone();
    sign_in(&c.rec, &c.sim.base, &back, "after-restart", &[])
        .await?
        .map_err(|e| anyhow::anyhow!("the restarted node: {e}"))?;
    Ok(())
}
