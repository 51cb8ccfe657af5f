//! What every signed-in page shares: the request's context ([`Cx`]: the
//! app, the principal, the CSRF token), the frame around a page
//! ([`Shell`]: navigation, who is signed in, sign-out), forms, and admin
//! API calls made on the principal's behalf.

use askama::Template;
use serde_json::Value;

use super::reply::Reply;
use super::{Request, format};
use crate::admin::{Answer, Call, Principal};
use crate::app::App;
use crate::money::Micros;

/// A signed-in request.
pub struct Cx<'a> {
    /// The application.
    pub app: &'a App,
    /// Who is signed in.
    pub principal: Principal,
    /// The session's CSRF token, for the forms.
    pub csrf: String,
    /// The request.
    pub request: &'a Request,
    /// The base currency's code.
    pub currency: String,
}

/// The frame of a page: navigation and who is signed in.
pub struct Shell {
    /// The page's title.
    pub title: String,
    /// The tab shown as current.
    pub tab: &'static str,
    /// The principal's name.
    pub who: String,
    /// Its role.
    pub role: &'static str,
    /// For the sign-out form.
    pub csrf: String,
    /// Whether the campaign tabs are shown (not for a `data` token).
    pub campaigns: bool,
    /// Whether the audience tab is shown (`admin`, `data`).
    pub audience: bool,
    /// Whether "New campaign" is shown (`admin`, `advertiser`).
    pub changes: bool,
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage<'a> {
    shell: Shell,
    heading: &'a str,
    text: &'a str,
}

impl<'a> Cx<'a> {
    /// The context of a signed-in request.
    pub fn new(app: &'a App, principal: Principal, csrf: String, request: &'a Request) -> Cx<'a> {
        let currency = app.bidder.world.load().settings.base_currency().as_str().to_string();
        Cx {
            app,
            principal,
            csrf,
            request,
            currency,
        }
    }

    /// The frame of a page titled `title` under tab `tab`.
    pub fn shell(&self, title: &str, tab: &'static str) -> Shell {
        Shell {
            title: title.to_string(),
            tab,
            who: self.principal.name.clone(),
            role: self.principal.role.as_str(),
            csrf: self.csrf.clone(),
            campaigns: self.principal.reads_campaigns(),
            audience: self.principal.uses_audience(),
            changes: self.principal.changes_campaigns(),
        }
    }

    /// Calls the admin API as the signed-in principal.
    pub fn call(&self, method: http::Method, path: &str, query: &[(&str, &str)], body: Option<&Value>) -> Answer {
        let call = Call {
            method,
            path: path.to_string(),
            query: query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.map_or_else(bytes::Bytes::new, |b| bytes::Bytes::from(b.to_string())),
            if_match: None,
        };
        self.app.admin(&self.principal, &call)
    }

    /// Calls the admin API with an `If-Match`.
    pub fn call_if_match(&self, method: http::Method, path: &str, body: &Value, version: &str) -> Answer {
        let call = Call {
            method,
            path: path.to_string(),
            query: Vec::new(),
            body: bytes::Bytes::from(body.to_string()),
            if_match: (!version.is_empty()).then(|| format!("\"{version}\"")),
        };
        self.app.admin(&self.principal, &call)
    }

    /// Money in the base currency, for reading.
    pub fn money(&self, micros: Micros) -> String {
        format::money(micros, &self.currency)
    }

    /// A page with a heading and a sentence (errors, refusals).
    pub fn message(&self, status: u16, heading: &str, text: &str) -> Reply {
        let page = MessagePage {
            shell: self.shell(heading, ""),
            heading,
            text,
        };
        render(status, &page)
    }
}

/// Renders a template into a page (a 500 page if it cannot: a bug).
pub fn render(status: u16, template: &impl Template) -> Reply {
    match template.render() {
        Ok(html) => Reply::html(status, html),
        Err(e) => {
            tracing::error!(error = %e, "console page not rendered");
            Reply::text(500, "page could not be rendered\n")
        }
    }
}

/// The error message of a non-2xx admin answer.
pub fn error_of(answer: &Answer) -> String {
    answer
        .body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("the request failed")
        .to_string()
}

/// A submitted form's fields, decoded.
#[derive(Clone, Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Decodes an `application/x-www-form-urlencoded` body.
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// A form with these fields (to prefill one).
    pub fn of(fields: Vec<(String, String)>) -> Form {
        Form(fields)
    }

    /// Whether the form has the field at all (empty or not).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// A field's value, trimmed (empty when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.trim())
    }
}

/// A validation problem shown next to its field.
#[derive(Clone, Debug)]
pub struct Problem {
    /// The form field it belongs to (`""`: the form as a whole).
    pub field: String,
    /// The API's path of the key (`creative[0].w`).
    pub key: String,
    /// Why.
    pub why: String,
}

/// The problems of a 400 answer, each placed on the form field whose name
/// starts its key (`targeting.age.min` → `targeting`, `creative[0].w` →
/// `creative`), or on the form as a whole.
pub fn problems_of(answer: &Answer, fields: &[&str]) -> Vec<Problem> {
    answer
        .problem_list()
        .into_iter()
        .map(|p| {
            let head = p.field.split(['.', '[']).next().unwrap_or("");
            Problem {
                field: fields.iter().find(|f| **f == head).map_or("", |f| f).to_string(),
                key: p.field,
                why: p.why,
            }
        })
        .collect()
}

/// A campaign's figures for today, as its API view (`GET
/// /admin/api/campaigns…`) gives them.
#[derive(Clone, Copy, Debug, Default)]
pub struct TodayFigures {
    /// Spend today.
    pub spend: Micros,
    /// Today's budget.
    pub budget: Micros,
    /// Impressions today.
    pub impressions: u64,
    /// Billable clicks today.
    pub clicks: u64,
}

impl TodayFigures {
    /// Read from one campaign's view (zeros where a value is missing).
    pub fn of(campaign: &Value) -> TodayFigures {
        let today = &campaign["live"]["today"];
        TodayFigures {
            spend: Micros(today["spend_micros"].as_i64().unwrap_or(0)),
            // Today's budget as served (capped by or derived from a
            // lifetime budget), else the configured one.
            budget: today["budget_micros"].as_i64().map(Micros).unwrap_or_else(|| {
                campaign["daily_budget"]
                    .as_str()
                    .and_then(|b| Micros::parse_decimal(b).ok())
                    .unwrap_or(Micros::ZERO)
            }),
            impressions: today["impressions"].as_u64().unwrap_or(0),
            clicks: today["clicks"].as_u64().unwrap_or(0),
        }
    }
}

/// A form as sent back to its page: the values given and the problems
/// found on them (what the edit and new-campaign templates read).
#[derive(Clone, Debug)]
pub struct FilledForm {
    /// The values.
    pub form: Form,
    /// The problems, by field.
    pub problems: Vec<Problem>,
}

impl FilledForm {
    /// A field's value.
    pub fn value(&self, field: &str) -> &str {
        self.form.get(field)
    }

    /// The problems on a field, joined.
    pub fn problem(&self, field: &str) -> String {
        problem_text(&self.problems, field)
    }

    /// The problems on no field of the form, each with its key.
    pub fn general(&self) -> Vec<String> {
        self.problems
            .iter()
            .filter(|p| p.field.is_empty())
            .map(|p| format!("{}: {}", p.key, p.why))
            .collect()
    }
}

/// The problems on one field, joined for display.
pub fn problem_text(problems: &[Problem], field: &str) -> String {
    problems
        .iter()
        .filter(|p| p.field == field)
        .map(|p| {
            if p.key == field {
                p.why.clone()
            } else {
                format!("{}: {}", p.key, p.why)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}
