//! Token-endpoint rate limit per client IP (`tokenRateLimitPerIp`), in memory and bounded: idle
//! keys are dropped every minute.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use iam_domain::oauth::{OAuthError, OAuthErrorKind};
use poem::Request;

use crate::state::AppState;

pub struct IpLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl IpLimiter {
    /// `per_second` requests a second with bursts of twice that; `None` for 0 (off).
    pub fn new(per_second: u32) -> Option<Arc<Self>> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
        let limiter = RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst));
        let this = Arc::new(Self {
            limiter,
            clock: DefaultClock::default(),
        });
        // The sweeper holds only a weak reference, so it ends with the limiter.
        let weak = Arc::downgrade(&this);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    every.tick().await;
                    let Some(l) = weak.upgrade() else { break };
                    l.limiter.retain_recent();
                    l.limiter.shrink_to_fit();
                }
            });
        }
        Some(this)
    }

    /// `Err(seconds to wait)` when this IP is over its rate.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.limiter.check_key(&ip).map_err(|not_until| {
            not_until
                .wait_time_from(self.clock.now())
                .as_secs_f64()
                .ceil()
                .max(1.0) as u64
        })
    }

    pub fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }
}

/// `slow_down` (429) when the caller's IP is over its rate.
pub fn check(state: &AppState, req: &Request) -> Result<(), OAuthError> {
    let (Some(limiter), Some(ip)) = (
        &state.rate_limit,
        crate::state::client_ip(req, &state.trusted_proxies),
    ) else {
        return Ok(());
    };
    limiter.check(ip).map_err(|wait| OAuthError {
        retry_after: Some(wait),
        ..OAuthError::new(
            OAuthErrorKind::SlowDown,
            "too many token requests from this address; slow down",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bursts_then_refuses_with_a_wait() {
        let l = IpLimiter::new(5).unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..10 {
            assert!(l.check(ip).is_ok(), "burst of 2x");
        }
        assert!(l.check(ip).unwrap_err() >= 1);
        assert!(l.check("10.0.0.2".parse().unwrap()).is_ok(), "per IP");
        assert!(IpLimiter::new(0).is_none());
    }
}
