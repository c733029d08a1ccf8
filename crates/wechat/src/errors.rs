//! WeChat's errcodes, grouped by what the caller should do.

use iam_domain::ports::{WechatError, WechatFault};
use serde_json::Value;

/// The fault in a body, or `None` when errcode is absent or 0. errcode may come as a number or a
/// numeric string.
pub(crate) fn fault_of(v: &Value) -> Option<WechatFault> {
    let errcode = match v.get("errcode") {
        None | Some(Value::Null) => return None,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(-1),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(-1),
        Some(_) => -1,
    };
    if errcode == 0 {
        return None;
    }
    let errmsg = v
        .get("errmsg")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let rid = errmsg
        .rsplit_once("rid: ")
        .map(|(_, r)| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    Some(WechatFault {
        errcode,
        errmsg,
        rid,
    })
}

pub fn classify(fault: WechatFault) -> WechatError {
    match fault.errcode {
        40029 => WechatError::InvalidCode(fault),
        40163 => WechatError::CodeUsed(fault),
        40226 => WechatError::Blocked(fault),
        41008 => WechatError::MissingCode(fault),
        45009 | 45011 => WechatError::RateLimited(fault),
        -1 => WechatError::Busy(fault),
        40002 | 40013 | 40125 | 40164 | 41002 | 41004 | 40243 | 50004 | 50007 => {
            WechatError::Misconfigured(fault)
        }
        40001 | 40014 | 41001 | 42001 => WechatError::AccessToken(fault),
        _ => WechatError::Other(fault),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn faults_and_rids() {
        assert!(fault_of(&json!({"openid": "o"})).is_none());
        assert!(fault_of(&json!({"errcode": 0, "errmsg": "ok"})).is_none());
        let f = fault_of(
            &json!({"errcode": 40029, "errmsg": "invalid code, rid: 66c69111-4157f271-729ca238"}),
        )
        .unwrap();
        assert_eq!(f.errcode, 40029);
        assert_eq!(f.rid.as_deref(), Some("66c69111-4157f271-729ca238"));
        let f = fault_of(&json!({"errcode": "40163", "errmsg": "code been used"})).unwrap();
        assert_eq!((f.errcode, f.rid), (40163, None));
    }
}
