//! The explain page (`/admin/explain`): paste a bid request, see for each
//! impression which campaign would win and every campaign's bid or the
//! rule that excluded it. Through [`super::data::explain`] (the API's
//! explain call, "unavailable" until it is merged).

use askama::Template;
use serde_json::Value;

use super::data::{Explained, ImpVerdict, explain};
use super::page::{Cx, Form, Shell, render};
use super::reply::Reply;

#[derive(Template)]
#[template(path = "console/explain.html")]
struct ExplainPage {
    shell: Shell,
    request: String,
    outcome: Option<Explained>,
}

impl ExplainPage {
    fn bid_of(bid: &Option<Value>) -> String {
        match bid {
            None | Some(Value::Null) => "—".into(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }
    }

    fn verdicts(&self) -> &[ImpVerdict] {
        match &self.outcome {
            Some(Explained::Verdicts(v)) => v,
            _ => &[],
        }
    }
}

/// The page, with an outcome once a request was explained.
pub fn page(cx: &Cx, request: &str, outcome: Option<Explained>) -> Reply {
    let page = ExplainPage {
        shell: cx.shell("Explain", "explain"),
        request: request.to_string(),
        outcome,
    };
    render(200, &page)
}

/// `POST /admin/explain`.
pub fn submit(cx: &Cx, form: &Form) -> Reply {
    let request = form.get("request");
    let outcome = explain(cx.app, &cx.principal, request);
    page(cx, request, Some(outcome))
}
