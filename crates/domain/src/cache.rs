//! A short-lived cache of configuration objects (applications, providers, organizations, certs)
//! read on every sign-in. Entries live two seconds: a change made through another server on the
//! same database is seen within that; changes made through this one clear it once they are
//! written. Absent objects are never cached, so a new application works immediately. Entries
//! are handed out as shared references: a hit copies no object (certs carry their PEMs).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::{Application, Cert, Organization, Provider};

pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    map: Mutex<HashMap<K, (Instant, Arc<V>)>>,
}

impl<K: Eq + Hash, V> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self::with_capacity(ttl, 10_000)
    }

    /// At most about `capacity` entries: when full, the expired ones go, and if that frees
    /// nothing, everything does (a cache miss is only a database read).
    pub fn with_capacity(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, Arc<V>)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
    {
        let map = self.lock();
        map.get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: K, value: Arc<V>) {
        let mut map = self.lock();
        self.make_room(&mut map);
        map.insert(key, (Instant::now(), value));
    }

    /// Stores `value` unless a live entry is there: what a database read found must not
    /// overwrite what a newer event (a revocation) put in meanwhile.
    pub fn put_if_absent(&self, key: K, value: Arc<V>) {
        let mut map = self.lock();
        if map.get(&key).is_some_and(|(at, _)| at.elapsed() < self.ttl) {
            return;
        }
        self.make_room(&mut map);
        map.insert(key, (Instant::now(), value));
    }

    pub fn remove<Q: Eq + Hash + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        self.lock().remove(key);
    }

    fn make_room(&self, map: &mut HashMap<K, (Instant, Arc<V>)>) {
        if map.len() >= self.capacity {
            map.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
    }

    pub fn clear(&self) {
        self.lock().clear();
    }
}

pub struct ConfigCache {
    pub apps_by_client_id: TtlCache<String, Application>,
    /// Keyed `owner/name`.
    pub providers: TtlCache<String, Provider>,
    pub organizations: TtlCache<String, Organization>,
    pub certs: TtlCache<String, Cert>,
    /// How many users an organization has (`*`: all), for `get-users`' total and
    /// `get-user-count`: counting a million rows is the slowest part of a page. Five seconds
    /// old at most; cleared when this node creates or deletes a user.
    pub user_totals: TtlCache<String, u64>,
}

impl Default for ConfigCache {
    fn default() -> Self {
        let ttl = Duration::from_secs(2);
        Self {
            apps_by_client_id: TtlCache::new(ttl),
            providers: TtlCache::new(ttl),
            organizations: TtlCache::new(ttl),
            certs: TtlCache::new(ttl),
            user_totals: TtlCache::new(Duration::from_secs(5)),
        }
    }
}

impl ConfigCache {
    pub fn clear(&self) {
        self.apps_by_client_id.clear();
        self.providers.clear();
        self.organizations.clear();
        self.certs.clear();
        self.user_totals.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let c: TtlCache<String, i32> = TtlCache::new(Duration::from_millis(20));
        c.put("a".into(), Arc::new(1));
        assert_eq!(c.get("a").as_deref(), Some(&1));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(c.get("a"), None);
        c.put("b".into(), Arc::new(2));
        c.clear();
        assert_eq!(c.get("b"), None);
    }
}
