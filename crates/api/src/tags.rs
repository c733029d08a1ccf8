//! The groups the API document shows its operations in.

use poem_openapi::Tags;

#[derive(Tags)]
pub enum Tag {
    /// The token endpoint: mini program sign-in and every other grant.
    OAuth,
    /// Bearer APIs of signed-in users.
    Users,
    /// Phone numbers, WeChat's legacy data and linked WeChat identities.
    Wechat,
    /// Sessions: listing sign-ins and signing out, one session or everywhere.
    Sessions,
    /// Audit records: every sign-in attempt and every write.
    Records,
    /// The management API of global administrators.
    Management,
    /// Discovery documents.
    Discovery,
    /// Probes and metrics for operators.
    Operations,
}
