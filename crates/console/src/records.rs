//! The audit log (SPEC §10's records) with filters and pages.

use std::sync::Arc;

use askama::Template;
use iam_domain::records::RecordParams;
use poem::web::Data;
use poem::{Request, Response, handler};

use crate::Console;
use crate::page::{self, Admin, Frame, Pager, field, page_number, query_fields, query_string};
use crate::users::RecordRow;

const PAGE_SIZE: u64 = 25;

pub struct LogRow {
    pub row: RecordRow,
    pub organization: String,
    pub user: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "records.html")]
struct RecordsPage {
    frame: Frame,
    rows: Vec<LogRow>,
    pager: Pager,
    user: String,
    action: String,
    response: String,
    organization: String,
    error: Option<String>,
}

#[handler]
pub async fn list(req: &Request, admin: Admin, Data(console): Data<&Arc<Console>>) -> Response {
    let q = query_fields(req);
    let page = page_number(&q);
    let user = field(&q, "user").trim().to_owned();
    let action = field(&q, "action").trim().to_owned();
    let response = field(&q, "response").trim().to_owned();
    let organization = match admin.scope() {
        Some(own) => own,
        None => field(&q, "organization").trim().to_owned(),
    };
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let params = RecordParams {
        owner: opt(&organization),
        user: opt(&user),
        action: opt(&action),
        response: opt(&response),
        p: Some(page.to_string()),
        page_size: Some(PAGE_SIZE.to_string()),
        ..RecordParams::default()
    };
    let (records, total, error) = match console.iam.get_records(&admin.principal, &params).await {
        Ok((r, n)) => (r, n, None),
        Err(e @ iam_domain::Error::Invalid(_)) => (Vec::new(), 0, Some(e.to_string())),
        Err(e) => return page::failure(&e),
    };
    let query = query_string(&[
        ("user", &user),
        ("action", &action),
        ("response", &response),
        (
            "organization",
            if admin.scope().is_some() {
                ""
            } else {
                &organization
            },
        ),
    ]);
    let t = RecordsPage {
        frame: admin.frame("Audit log", "records"),
        rows: records
            .iter()
            .map(|r| LogRow {
                row: RecordRow::from(r),
                organization: r.organization.clone(),
                user: r.user_name.clone(),
                detail: r.detail.chars().take(200).collect(),
            })
            .collect(),
        pager: Pager::new(page, PAGE_SIZE, total, query),
        user,
        action,
        response,
        organization,
        error,
    };
    page::render(&t)
}
