//! One WeChat call per login code. Concurrent requests carrying the same code (a double tap, two
//! pages calling wx.login's result, a retrying proxy) share a single code2Session call; a code
//! that was already exchanged is refused locally for 5 minutes instead of costing WeChat a call
//! (and earning a 40163).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use iam_domain::Secret;
use iam_domain::ports::{WechatApi, WechatError, WechatFault, WechatSession};
use iam_domain::values::{AppId, WechatCode};
use tokio::sync::watch;

type Outcome = Result<WechatSession, WechatError>;

enum State {
    InFlight(watch::Receiver<Option<Outcome>>),
    Spent(Instant),
}

/// Codes are remembered by a keyed 64-bit hash of (appid, code): 5 minutes of codes at launch
/// rates stay a few megabytes.
type Key = u64;

struct States {
    map: HashMap<Key, State>,
    last_sweep: Instant,
}

pub struct CodeGate<W> {
    inner: W,
    remember: Duration,
    hasher: std::hash::RandomState,
    states: Mutex<States>,
}

impl<W> CodeGate<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            remember: Duration::from_secs(300),
            hasher: std::hash::RandomState::new(),
            states: Mutex::new(States {
                map: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, States> {
        match self.states.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn key(&self, appid: &AppId, code: &WechatCode) -> Key {
        use std::hash::BuildHasher;
        self.hasher.hash_one((appid.as_str(), code.as_str()))
    }
}

/// Did this outcome use the code up? Busy, timeouts and other transient failures leave it
/// usable from our side, so the mini program may retry with it.
fn spends_code(outcome: &Outcome) -> bool {
    match outcome {
        Ok(_) => true,
        Err(e) => matches!(
            e,
            WechatError::InvalidCode(_) | WechatError::CodeUsed(_) | WechatError::Blocked(_)
        ),
    }
}

fn refused_locally() -> WechatError {
    WechatError::CodeUsed(WechatFault {
        errcode: 40163,
        errmsg: "code been used (refused locally: this code was already exchanged)".into(),
        rid: None,
    })
}

#[async_trait]
impl<W: WechatApi> WechatApi for CodeGate<W> {
    async fn phone_number(
        &self,
        appid: &AppId,
        secret: &Secret,
        phone_code: &str,
        openid: &str,
    ) -> Result<iam_domain::ports::PhoneInfo, WechatError> {
        self.inner
            .phone_number(appid, secret, phone_code, openid)
            .await
    }

    async fn check_session(
        &self,
        appid: &AppId,
        secret: &Secret,
        openid: &str,
        session_key: &Secret,
    ) -> Result<bool, WechatError> {
        self.inner
            .check_session(appid, secret, openid, session_key)
            .await
    }

    async fn check_credentials(&self, appid: &AppId, secret: &Secret) -> Result<(), WechatError> {
        self.inner.check_credentials(appid, secret).await
    }

    fn decrypt(
        &self,
        session_key: &Secret,
        encrypted_data: &str,
        iv: &str,
    ) -> Result<Vec<u8>, iam_domain::ports::DecryptError> {
        self.inner.decrypt(session_key, encrypted_data, iv)
    }

    fn raw_data_signed(&self, raw_data: &str, session_key: &Secret, signature: &str) -> bool {
        self.inner.raw_data_signed(raw_data, session_key, signature)
    }

    async fn code_to_session(&self, appid: &AppId, secret: &Secret, code: &WechatCode) -> Outcome {
        let key = self.key(appid, code);
        enum Decision {
            Refuse,
            Wait(watch::Receiver<Option<Outcome>>),
            Lead(watch::Sender<Option<Outcome>>),
        }
        let decision = {
            let mut states = self.lock();
            // Forget spent codes past their 5 minutes, at most once a second.
            if states.last_sweep.elapsed() > Duration::from_secs(1) {
                let remember = self.remember;
                states.map.retain(|_, s| match s {
                    State::Spent(at) => at.elapsed() < remember,
                    State::InFlight(_) => true,
                });
                states.last_sweep = Instant::now();
            }
            match states.map.get(&key) {
                Some(State::Spent(at)) if at.elapsed() < self.remember => Decision::Refuse,
                Some(State::InFlight(rx)) => Decision::Wait(rx.clone()),
                _ => {
                    let (tx, rx) = watch::channel(None);
                    states.map.insert(key, State::InFlight(rx));
                    Decision::Lead(tx)
                }
            }
        };
        let sender = match decision {
            Decision::Refuse => return Err(refused_locally()),
            Decision::Wait(mut rx) => {
                return match rx.wait_for(Option::is_some).await {
                    Ok(v) => v.clone().unwrap_or_else(|| Err(refused_locally())),
                    // The leader went away without an answer (its request was dropped).
                    Err(_) => Err(WechatError::Transport(
                        "the shared exchange was abandoned".into(),
                    )),
                };
            }
            Decision::Lead(tx) => tx,
        };
        // If this future is dropped mid-call, the entry must not stay in flight forever.
        struct Cleanup<'a, W> {
            gate: &'a CodeGate<W>,
            key: Option<Key>,
        }
        impl<W> Drop for Cleanup<'_, W> {
            fn drop(&mut self) {
                if let Some(k) = self.key.take() {
                    self.gate.lock().map.remove(&k);
                }
            }
        }
        let mut cleanup = Cleanup {
            gate: self,
            key: Some(key),
        };
        let outcome = self.inner.code_to_session(appid, secret, code).await;
        {
            let mut states = self.lock();
            if spends_code(&outcome) {
                states.map.insert(key, State::Spent(Instant::now()));
            } else {
                states.map.remove(&key);
            }
            cleanup.key = None;
        }
        let _ = sender.send(Some(outcome.clone()));
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting {
        calls: AtomicUsize,
        answer: Outcome,
    }

    #[async_trait]
    impl WechatApi for Counting {
        async fn code_to_session(&self, _: &AppId, _: &Secret, _: &WechatCode) -> Outcome {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.answer.clone()
        }

        // The gate passes these through untouched; these tests only exchange codes.
        async fn phone_number(
            &self,
            _: &AppId,
            _: &Secret,
            _: &str,
            _: &str,
        ) -> Result<iam_domain::ports::PhoneInfo, WechatError> {
            Err(WechatError::Transport("not used by these tests".into()))
        }

        async fn check_session(
            &self,
            _: &AppId,
            _: &Secret,
            _: &str,
            _: &Secret,
        ) -> Result<bool, WechatError> {
            Err(WechatError::Transport("not used by these tests".into()))
        }

        async fn check_credentials(&self, _: &AppId, _: &Secret) -> Result<(), WechatError> {
            Err(WechatError::Transport("not used by these tests".into()))
        }

        fn decrypt(
            &self,
            _: &Secret,
            _: &str,
            _: &str,
        ) -> Result<Vec<u8>, iam_domain::ports::DecryptError> {
            Err(iam_domain::ports::DecryptError::WrongKey)
        }

        fn raw_data_signed(&self, _: &str, _: &Secret, _: &str) -> bool {
            false
        }
    }

    fn session() -> WechatSession {
        WechatSession {
            openid: iam_domain::values::WechatId::parse("openid", "o1").unwrap(),
            unionid: None,
            session_key: Secret::new("k"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_requests_share_one_call_and_a_spent_code_is_refused() {
        let gate = Arc::new(CodeGate::new(Counting {
            calls: AtomicUsize::new(0),
            answer: Ok(session()),
        }));
        let appid = AppId::parse("wx1").unwrap();
        let code = WechatCode::parse("0abc").unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (g, a, c) = (gate.clone(), appid.clone(), code.clone());
                tokio::spawn(async move { g.code_to_session(&a, &Secret::new("s"), &c).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().openid.as_str(), "o1");
        }
        assert_eq!(gate.inner.calls.load(Ordering::SeqCst), 1);
        let again = gate.code_to_session(&appid, &Secret::new("s"), &code).await;
        assert!(matches!(again, Err(WechatError::CodeUsed(_))));
        assert_eq!(
            gate.inner.calls.load(Ordering::SeqCst),
            1,
            "refused without calling WeChat"
        );
    }

    #[tokio::test]
    async fn a_busy_answer_leaves_the_code_usable() {
        let gate = CodeGate::new(Counting {
            calls: AtomicUsize::new(0),
            answer: Err(WechatError::Timeout),
        });
        let appid = AppId::parse("wx1").unwrap();
        let code = WechatCode::parse("0abc").unwrap();
        for _ in 0..2 {
            assert_eq!(
                gate.code_to_session(&appid, &Secret::new("s"), &code).await,
                Err(WechatError::Timeout)
            );
        }
        assert_eq!(gate.inner.calls.load(Ordering::SeqCst), 2);
    }
}
