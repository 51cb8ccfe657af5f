//! The new-campaign page (`/admin/new`): a form for a campaign with one
//! creative, a preview of the creative in a sandboxed
//! `<iframe sandbox srcdoc>` (the "Preview" button re-renders the form
//! with it), and creation through `POST /admin/api/campaigns`.
//!
//! The preview document is built here and escaped by the template into
//! the `srcdoc` attribute; it inherits the console's CSP and, sandboxed
//! without `allow-scripts`, runs nothing.

use askama::Template;
use serde_json::{Map, Value, json};

use super::chart::escape;
use super::page::{Cx, FilledForm, Form, Problem, Shell, error_of, render};
use super::reply::Reply;

/// Campaign fields of the form, sent as strings when given.
const CAMPAIGN_FIELDS: [&str; 14] = [
    "id",
    "advertiser",
    "pricing",
    "max_bid",
    "pctr_prior",
    "target_cpa",
    "cps_share",
    "order_value_prior",
    "max_cpm",
    "daily_budget",
    "total_budget",
    "pacing",
    "time_zone",
    "start",
];

/// Creative fields of the form (the creative's `id` is `creative_id`).
/// For a native creative, `title` is its title and the image (`image_url`,
/// `w`, `h`) its main image.
const CREATIVE_FIELDS: [&str; 7] = ["format", "w", "h", "image_url", "adm", "landing_url", "title"];

#[derive(Template)]
#[template(path = "console/new.html")]
struct NewPage {
    shell: Shell,
    filled: FilledForm,
    advertisers: Vec<String>,
    fixed_advertiser: Option<String>,
    preview: Option<String>,
    size: (String, String),
    error: Option<String>,
}

/// The template reads the form's values and problems as the page's own.
impl std::ops::Deref for NewPage {
    type Target = FilledForm;

    fn deref(&self) -> &FilledForm {
        &self.filled
    }
}

/// The preview document of the form's creative, if it has something to
/// show: the markup itself, or the image linked to the landing page.
fn preview_of(form: &Form) -> Option<String> {
    match (form.get("adm"), form.get("image_url")) {
        ("", "") => None,
        ("", image) => Some(format!(
            "<!doctype html><a href=\"{}\" target=\"_blank\" rel=\"noopener\"><img src=\"{}\" alt=\"creative\" width=\"{}\" height=\"{}\"></a>",
            escape(form.get("landing_url")),
            escape(image),
            escape(form.get("w")),
            escape(form.get("h")),
        )),
        (markup, _) => Some(markup.to_string()),
    }
}

/// The campaign the form describes, or problems it has before any call.
fn campaign_of(form: &Form) -> Result<Value, Vec<Problem>> {
    let mut campaign = Map::new();
    for field in CAMPAIGN_FIELDS.into_iter().chain(["end"]) {
        if !form.get(field).is_empty() {
            campaign.insert(field.into(), json!(form.get(field)));
        }
    }
    let domains: Vec<&str> = form
        .get("adomain")
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    campaign.insert("adomain".into(), json!(domains));
    let mut creative = Map::new();
    let creative_id = match form.get("creative_id") {
        "" => format!("{}-1", form.get("id")),
        id => id.to_string(),
    };
    creative.insert("id".into(), json!(creative_id));
    let mut problems = Vec::new();
    for field in CREATIVE_FIELDS {
        let value = form.get(field);
        if value.is_empty() {
            continue;
        }
        if field == "w" || field == "h" {
            match value.parse::<i64>() {
                Ok(n) => creative.insert(field.into(), json!(n)),
                Err(_) => {
                    problems.push(Problem {
                        field: field.into(),
                        key: field.into(),
                        why: "a whole number of pixels".into(),
                    });
                    continue;
                }
            };
        } else {
            creative.insert(field.into(), json!(value));
        }
    }
    if form.get("format") == "native" {
        as_native(&mut creative);
    }
    campaign.insert("creative".into(), json!([creative]));
    if problems.is_empty() {
        Ok(Value::Object(campaign))
    } else {
        Err(problems)
    }
}

/// A native creative's image, given as the form's image, becomes its main
/// image (`[[campaign.creative.image]]`); its title is the form's.
fn as_native(creative: &mut Map<String, Value>) {
    let Some(url) = creative.remove("image_url") else {
        creative.remove("w");
        creative.remove("h");
        return;
    };
    let mut image = Map::new();
    image.insert("type".into(), json!("main"));
    image.insert("url".into(), url);
    for side in ["w", "h"] {
        if let Some(value) = creative.remove(side) {
            image.insert(side.into(), value);
        }
    }
    creative.insert("image".into(), json!([image]));
}

/// The API's problems placed on the form's fields (`creative[0].w` → `w`;
/// a native creative's `creative[0].image[0].url` → `image_url`).
fn placed(answer: &crate::admin::Answer) -> Vec<Problem> {
    answer
        .problem_list()
        .into_iter()
        .map(|p| {
            let inner = p.field.strip_prefix("creative[0].").unwrap_or(&p.field);
            let inner = match inner.strip_prefix("image[0].") {
                Some("url") => "image_url",
                Some(side) => side,
                None => inner,
            };
            let head = inner.split(['.', '[']).next().unwrap_or("");
            let field = CAMPAIGN_FIELDS
                .iter()
                .chain(CREATIVE_FIELDS.iter())
                .chain(["end", "adomain"].iter())
                .find(|f| **f == head)
                .map_or("", |f| f);
            Problem {
                field: field.to_string(),
                key: p.field.clone(),
                why: p.why,
            }
        })
        .collect()
}

fn advertisers(cx: &Cx) -> Vec<String> {
    let answer = cx.call(http::Method::GET, "/admin/api/advertisers", &[], None);
    answer.body["advertisers"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|a| a["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A frame side for a creative side (`default` when not a number).
fn framed(side: &str, default: u32) -> String {
    (side.parse::<u32>().unwrap_or(default).min(2000) + 16).to_string()
}

/// The form, with a preview if asked and the problems found.
fn show(cx: &Cx, form: &Form, preview: bool, problems: Vec<Problem>, error: Option<String>, status: u16) -> Reply {
    if !cx.principal.changes_campaigns() {
        return cx.message(403, "Not allowed", "Your role may not create campaigns.");
    }
    let page = NewPage {
        shell: cx.shell("New campaign", "new"),
        filled: FilledForm {
            form: form.clone(),
            problems,
        },
        advertisers: advertisers(cx),
        fixed_advertiser: cx.principal.advertiser.clone(),
        preview: if preview { preview_of(form) } else { None },
        // The preview's body keeps its default 8 px margin (no inline style
        // under the CSP): the frame is that much larger than the creative.
        size: (framed(form.get("w"), 300), framed(form.get("h"), 250)),
        error,
    };
    render(status, &page)
}

/// `GET /admin/new`.
pub fn page(cx: &Cx, form: &Form, preview: bool) -> Reply {
    let form = if form.get("pricing").is_empty() {
        Form::of(vec![
            ("pricing".into(), "cpm".into()),
            ("pacing".into(), "even".into()),
            ("format".into(), "banner".into()),
            ("w".into(), "300".into()),
            ("h".into(), "250".into()),
            ("time_zone".into(), "UTC".into()),
        ])
    } else {
        form.clone()
    };
    show(cx, &form, preview, Vec::new(), None, 200)
}

/// `POST /admin/new`: `action=preview` shows the creative, `action=create`
/// creates the campaign.
pub fn submit(cx: &Cx, form: &Form) -> Reply {
    if form.get("action") == "preview" {
        return show(cx, form, true, Vec::new(), None, 200);
    }
    let campaign = match campaign_of(form) {
        Ok(campaign) => campaign,
        Err(problems) => return show(cx, form, true, problems, Some("Some fields need fixing.".into()), 400),
    };
    let answer = cx.call(http::Method::POST, "/admin/api/campaigns", &[], Some(&campaign));
    match answer.status {
        201 => Reply::redirect(&format!("/admin/campaigns/{}?created=1", form.get("id"))),
        400 => show(
            cx,
            form,
            true,
            placed(&answer),
            Some("The campaign was not created.".into()),
            400,
        ),
        409 => {
            let problem = Problem {
                field: "id".into(),
                key: "id".into(),
                why: "a campaign with this id exists".into(),
            };
            show(
                cx,
                form,
                true,
                vec![problem],
                Some("The campaign was not created.".into()),
                409,
            )
        }
        status => show(cx, form, true, Vec::new(), Some(error_of(&answer)), status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_a_campaign_with_one_creative() {
        let form = Form::parse(
            b"id=c1&advertiser=A&pricing=cpm&max_bid=2.5&daily_budget=100&adomain=a.example&format=banner&w=300&h=250&image_url=https%3A%2F%2Fx%2Fa.png&landing_url=https%3A%2F%2Fa.example%2F",
        );
        let campaign = campaign_of(&form).unwrap();
        assert_eq!(campaign["max_bid"], "2.5");
        assert_eq!(campaign["creative"][0]["id"], "c1-1");
        assert_eq!(campaign["creative"][0]["w"], 300);
        assert!(campaign.get("total_budget").is_none());
        let bad = Form::parse(b"id=c1&w=wide");
        assert_eq!(campaign_of(&bad).unwrap_err()[0].field, "w");
    }

    #[test]
    fn a_native_form_gives_a_title_and_a_main_image() {
        let form = Form::parse(
            b"id=n1&format=native&title=Hello&w=1200&h=627&image_url=https%3A%2F%2Fx%2Fa.jpg&landing_url=https%3A%2F%2Fa.example%2F",
        );
        let creative = &campaign_of(&form).unwrap()["creative"][0];
        assert_eq!(
            *creative,
            json!({"id": "n1-1", "format": "native", "title": "Hello", "landing_url": "https://a.example/",
                   "image": [{"type": "main", "url": "https://x/a.jpg", "w": 1200, "h": 627}]})
        );
        let title_only = Form::parse(b"id=n1&format=native&title=Hello&w=300&h=250");
        assert!(campaign_of(&title_only).unwrap()["creative"][0].get("w").is_none());
    }

    #[test]
    fn the_preview_escapes_what_it_is_given() {
        let form =
            Form::parse(b"image_url=https%3A%2F%2Fx%2F%22%3E%3Cscript%3E&landing_url=https%3A%2F%2Fa%2F&w=300&h=250");
        let preview = preview_of(&form).unwrap();
        assert!(preview.contains("&quot;&gt;&lt;script&gt;") && !preview.contains("<script>"));
        assert!(preview_of(&Form::default()).is_none());
    }
}
