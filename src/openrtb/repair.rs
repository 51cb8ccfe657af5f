//! Repair of a bid request whose known fields have the wrong JSON type.
//!
//! The typed decoder is strict about the fields it reads, so a well-formed
//! request costs nothing extra. When it fails, the body is read again as a
//! JSON tree and every field of [`FIELDS`] is checked against its kind and
//! treated by its [`Class`]:
//!
//! - (a) an unambiguous coercion is applied (`"1984"` → 1984, a single
//!   string where a list is expected → a one-element list, `123` → `"123"`
//!   where a string is expected, one object where a list of objects is);
//! - (b) a restrictive, privacy or money field that cannot be coerced takes
//!   its most restrictive reading: an unreadable block list (`bcat`, `badv`,
//!   `bapp`, `wseat`, `bseat`) means no bid for the request, an unreadable
//!   floor, floor currency, `battr` or `pmp` no bid for its impression, an
//!   unreadable deal term no bid in that deal, an unreadable consent,
//!   `us_privacy` or GPP string no personal data, and an unreadable
//!   `coppa`, `gdpr`, `lmt`, `dnt` or `private_auction` reads as set;
//! - (c) anything else is dropped, as if absent.
//!
//! The repaired tree is written out and decoded again; what (b) decided is
//! then marked on the typed request ([`Marks::apply`]). Each case is
//! reported ([`Repair`]) so that the bidder counts it per field. The table
//! is also the README's list of the fields the bidder reads
//! ([`markdown_table`], kept in step by a test).

use serde_json::{Map, Number, Value};

use super::request::BidRequest;
use super::text::Floor;

/// The JSON type a field must have for the typed decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Str,
    /// An integer (64-bit).
    Int,
    /// An integer that fits 32 bits (enumerations, codes).
    Int32,
    /// A number.
    Num,
    /// A 0/1 flag: a number, a boolean, `"0"`/`"1"`/`"true"`/`"false"`.
    Flag,
    /// A floor price (a number).
    Floor,
    /// A list of strings.
    StrList,
    /// A list of 32-bit integers.
    IntList,
    /// An object.
    Object,
    /// A list of objects.
    ObjectList,
    /// Any JSON value (read by a decoder of its own, which never fails the
    /// request: the native request).
    Any,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Int | Kind::Int32 => "integer",
            Kind::Num | Kind::Floor => "number",
            Kind::Flag => "0/1",
            Kind::StrList => "string array",
            Kind::IntList => "integer array",
            Kind::Object => "object",
            Kind::ObjectList => "object array",
            Kind::Any => "string or object",
        }
    }
}

/// What happens to a field that has the wrong type and cannot be coerced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// (c) Dropped, as if absent.
    Optional,
    /// Needed for a bid: dropped, and the request is refused (400) by the
    /// decoder's validation with the reason.
    Required,
    /// (b) A request-level block: no impression of the request is bid on.
    BlocksRequest,
    /// (b) A floor or a block of the impression: no bid for it.
    BlocksImp,
    /// (b) A term of a deal: no bid in that deal.
    BlocksDeal,
    /// (b) A privacy signal: personal data is not used.
    Private,
    /// (b) A flag whose restrictive reading is "set": read as 1.
    SetFlag,
}

impl Class {
    fn describe(self) -> &'static str {
        match self {
            Class::Optional => "ignored",
            Class::Required => "request refused (400)",
            Class::BlocksRequest => "no bid for the request",
            Class::BlocksImp => "no bid for the impression",
            Class::BlocksDeal => "no bid in the deal",
            Class::Private => "no personal data",
            Class::SetFlag => "read as 1",
        }
    }
}

/// A field the bidder reads: its path (`[]` after a list), kind, class
/// and what the bidder does with it.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// Dotted path from the request, `[]` marking list elements.
    pub path: &'static str,
    /// Its JSON type.
    pub kind: Kind,
    /// What a wrong type that cannot be coerced does.
    pub class: Class,
    /// What the bidder does with it.
    pub what: &'static str,
}

const fn f(path: &'static str, kind: Kind, class: Class, what: &'static str) -> Field {
    Field {
        path,
        kind,
        class,
        what,
    }
}

use Class::*;
use Kind::*;

/// Every field the bidder reads, parents before their children.
pub const FIELDS: &[Field] = &[
    f("id", Str, Required, "echoed as the response `id`"),
    f(
        "imp",
        ObjectList,
        Required,
        "the impressions; one bid each at most (a dynamic video pod may take several)",
    ),
    f("imp[].id", Str, Required, "echoed as the bid's `impid`"),
    f("imp[].banner", Object, Optional, "banner slot"),
    f("imp[].banner.w", Int, Optional, "accepted size (with `h`)"),
    f("imp[].banner.h", Int, Optional, "accepted size (with `w`)"),
    f("imp[].banner.format", ObjectList, Optional, "accepted sizes"),
    f("imp[].banner.format[].w", Int, Optional, "accepted width"),
    f("imp[].banner.format[].h", Int, Optional, "accepted height"),
    f("imp[].banner.battr", IntList, BlocksImp, "creative attributes refused"),
    f("imp[].banner.mimes", StrList, Optional, "creative MIME types accepted"),
    f("imp[].banner.pos", Int32, Optional, "read, not used"),
    f("imp[].video", Object, Optional, "video slot"),
    f("imp[].video.mimes", StrList, Optional, "creative MIME types accepted"),
    f("imp[].video.minduration", Int, Optional, "shortest creative accepted"),
    f("imp[].video.maxduration", Int, Optional, "longest creative accepted"),
    f(
        "imp[].video.protocols",
        IntList,
        Optional,
        "VAST versions accepted: a creative's version must be one",
    ),
    f("imp[].video.w", Int, Optional, "read, not used"),
    f("imp[].video.h", Int, Optional, "read, not used"),
    f("imp[].video.battr", IntList, BlocksImp, "creative attributes refused"),
    f(
        "imp[].video.plcmt",
        Int32,
        Optional,
        "placement subtype, for `video_placements` targeting",
    ),
    f(
        "imp[].video.placement",
        Int32,
        Optional,
        "2.5 placement, read when `plcmt` is absent",
    ),
    f(
        "imp[].video.linearity",
        Int32,
        Optional,
        "linear or non-linear: must match the creative's",
    ),
    f(
        "imp[].video.skip",
        Flag,
        Optional,
        "skippable player, for a creative's `skippable`",
    ),
    f("imp[].video.skipmin", Int, Optional, "only longer ads are skippable"),
    f("imp[].video.skipafter", Int, Optional, "read, not used"),
    f(
        "imp[].video.startdelay",
        Int,
        Optional,
        "pre/mid/post-roll, for `start_delays` targeting",
    ),
    f(
        "imp[].video.api",
        IntList,
        Optional,
        "API frameworks: a creative's `api` must be among them",
    ),
    f(
        "imp[].video.podid",
        Str,
        Optional,
        "ad pod: distinct creatives across its slots",
    ),
    f(
        "imp[].video.poddur",
        Int,
        Optional,
        "dynamic pod: total seconds of its ads",
    ),
    f("imp[].video.maxseq", Int, Optional, "dynamic pod: most ads it takes"),
    f("imp[].audio", Object, Optional, "audio slot"),
    f("imp[].audio.mimes", StrList, Optional, "creative MIME types accepted"),
    f("imp[].audio.minduration", Int, Optional, "shortest creative accepted"),
    f("imp[].audio.maxduration", Int, Optional, "longest creative accepted"),
    f("imp[].audio.battr", IntList, BlocksImp, "creative attributes refused"),
    f(
        "imp[].audio.protocols",
        IntList,
        Optional,
        "DAAST/VAST versions accepted",
    ),
    f(
        "imp[].audio.api",
        IntList,
        Optional,
        "API frameworks: a creative's `api` must be among them",
    ),
    f(
        "imp[].audio.startdelay",
        Int,
        Optional,
        "pre/mid/post-roll, for `start_delays` targeting",
    ),
    f("imp[].native", Object, Optional, "native slot"),
    f(
        "imp[].native.request",
        Str,
        Optional,
        "the native request: assets a creative must fill",
    ),
    f("imp[].native.ver", Str, Optional, "native version"),
    f("imp[].native.battr", IntList, BlocksImp, "creative attributes refused"),
    f("imp[].pmp", Object, BlocksImp, "private marketplace"),
    f("imp[].pmp.private_auction", Flag, SetFlag, "only deals may bid"),
    f("imp[].pmp.deals", ObjectList, Optional, "deals on offer"),
    f(
        "imp[].pmp.deals[].id",
        Str,
        BlocksDeal,
        "deal id, targeted by campaigns, echoed as `dealid`",
    ),
    f("imp[].pmp.deals[].bidfloor", Floor, BlocksDeal, "deal floor"),
    f("imp[].pmp.deals[].bidfloorcur", Str, BlocksDeal, "deal floor currency"),
    f("imp[].pmp.deals[].at", Int32, BlocksDeal, "deal auction type"),
    f(
        "imp[].pmp.deals[].wseat",
        StrList,
        BlocksDeal,
        "seats allowed in the deal",
    ),
    f(
        "imp[].pmp.deals[].wadomain",
        StrList,
        BlocksDeal,
        "advertiser domains allowed in the deal",
    ),
    f("imp[].bidfloor", Floor, BlocksImp, "floor, CPM"),
    f("imp[].bidfloorcur", Str, BlocksImp, "floor currency"),
    f("imp[].instl", Flag, Optional, "read, not used"),
    f("imp[].tagid", Str, Optional, "read, not used"),
    f(
        "imp[].exp",
        Int,
        Optional,
        "seconds to display: shortens the notice window",
    ),
    f("imp[].qty", Object, BlocksImp, "impression multiplier (DOOH)"),
    f(
        "imp[].qty.multiplier",
        Num,
        BlocksImp,
        "a win is billed `multiplier` × the clearing price",
    ),
    f(
        "imp[].rwdd",
        Flag,
        Optional,
        "rewarded inventory, for `rewarded` targeting",
    ),
    f("site", Object, Optional, "web inventory"),
    f("site.id", Str, Optional, "read, not used"),
    f("site.domain", Str, Optional, "domain targeting and reports"),
    f("site.page", Str, Optional, "its host stands in for a missing domain"),
    f("site.cat", StrList, Optional, "category targeting"),
    f("site.sectioncat", StrList, Optional, "category targeting"),
    f("site.pagecat", StrList, Optional, "category targeting"),
    f("site.cattax", Int32, Optional, "taxonomy of the site's categories"),
    f("site.publisher", Object, Optional, "publisher"),
    f("site.publisher.id", Str, Optional, "read, not used"),
    f("site.publisher.domain", Str, Optional, "domain targeting"),
    f("app", Object, Optional, "app inventory"),
    f("app.id", Str, Optional, "read, not used"),
    f("app.bundle", Str, Optional, "domain targeting and reports"),
    f("app.domain", Str, Optional, "domain targeting"),
    f("app.cat", StrList, Optional, "category targeting"),
    f("app.sectioncat", StrList, Optional, "category targeting"),
    f("app.pagecat", StrList, Optional, "category targeting"),
    f("app.cattax", Int32, Optional, "taxonomy of the app's categories"),
    f("app.publisher", Object, Optional, "publisher"),
    f("app.publisher.id", Str, Optional, "read, not used"),
    f("app.publisher.domain", Str, Optional, "domain targeting"),
    f("dooh", Object, Optional, "out-of-home inventory"),
    f("dooh.id", Str, Optional, "read, not used"),
    f("dooh.domain", Str, Optional, "domain targeting"),
    f("device", Object, Private, "the device"),
    f("device.ua", Str, Optional, "bot screening"),
    f("device.ip", Str, Optional, "data-centre screening, reports"),
    f("device.ipv6", Str, Optional, "read when `ip` is absent"),
    f("device.devicetype", Int32, Optional, "device targeting and reports"),
    f("device.os", Str, Optional, "OS targeting"),
    f("device.connectiontype", Int32, Optional, "connection targeting"),
    f("device.ifa", Str, Optional, "user id (when configured)"),
    f("device.lmt", Flag, SetFlag, "limit ad tracking: no personal data"),
    f("device.dnt", Flag, SetFlag, "do not track: no personal data"),
    f("device.geo", Object, Optional, "location"),
    f("device.geo.lat", Num, Optional, "radius targeting"),
    f("device.geo.lon", Num, Optional, "radius targeting"),
    f("device.geo.country", Str, Optional, "country targeting and reports"),
    f("device.geo.region", Str, Optional, "region targeting"),
    f("device.geo.city", Str, Optional, "city targeting"),
    f("device.sua", Object, Optional, "structured user agent"),
    f("device.sua.browsers", ObjectList, Optional, "browser brands"),
    f(
        "device.sua.browsers[].brand",
        Str,
        Optional,
        "headless-browser screening",
    ),
    f("user", Object, Optional, "the viewer"),
    f("user.id", Str, Optional, "user id (when configured)"),
    f(
        "user.buyeruid",
        Str,
        Optional,
        "user id: ours, or the exchange's mapped by user sync",
    ),
    f("user.yob", Int, Optional, "age targeting"),
    f("user.gender", Str, Optional, "gender targeting"),
    f("user.consent", Str, Private, "TCF consent"),
    f("user.geo", Object, Optional, "location when the device has none"),
    f("user.geo.lat", Num, Optional, "radius targeting"),
    f("user.geo.lon", Num, Optional, "radius targeting"),
    f("user.geo.country", Str, Optional, "country targeting"),
    f("user.geo.region", Str, Optional, "region targeting"),
    f("user.geo.city", Str, Optional, "city targeting"),
    f(
        "user.eids",
        ObjectList,
        Optional,
        "extended ids: user id by configured source (`eid:<source>`)",
    ),
    f("user.eids[].source", Str, Optional, "the id provider"),
    f("user.eids[].uids", ObjectList, Optional, "its ids; the first is used"),
    f("user.eids[].uids[].id", Str, Optional, "the id"),
    f(
        "user.data",
        ObjectList,
        Optional,
        "exchange data segments, mapped to ours per exchange (`segment_map`)",
    ),
    f("user.data[].id", Str, Optional, "data provider id"),
    f(
        "user.data[].name",
        Str,
        Optional,
        "data provider name (matched when the id is not)",
    ),
    f(
        "user.data[].segment",
        ObjectList,
        Optional,
        "the provider's segments of the user",
    ),
    f("user.data[].segment[].id", Str, Optional, "segment id at the provider"),
    f("user.data[].segment[].name", Str, Optional, "read, not used"),
    f("user.ext", Object, Private, "2.5 placements"),
    f("user.ext.consent", Str, Private, "TCF consent (2.5)"),
    f("user.ext.eids", ObjectList, Optional, "extended ids (2.5)"),
    f("user.ext.eids[].source", Str, Optional, "the id provider"),
    f(
        "user.ext.eids[].uids",
        ObjectList,
        Optional,
        "its ids; the first is used",
    ),
    f("user.ext.eids[].uids[].id", Str, Optional, "the id"),
    f("test", Flag, Optional, "test request: nothing reserved or billed"),
    f("at", Int32, Optional, "first or second price: shading"),
    f("tmax", Int, Optional, "answer deadline"),
    f("wseat", StrList, BlocksRequest, "seats allowed"),
    f("bseat", StrList, BlocksRequest, "seats refused"),
    f("cur", StrList, Optional, "currencies accepted for the response"),
    f("bcat", StrList, BlocksRequest, "categories refused"),
    f("badv", StrList, BlocksRequest, "advertiser domains refused"),
    f("bapp", StrList, BlocksRequest, "app bundles refused"),
    f("cattax", Int32, BlocksRequest, "taxonomy of `bcat` (1.0 or 2.x)"),
    f("regs", Object, Private, "regulations"),
    f("regs.coppa", Flag, SetFlag, "COPPA: no personal data"),
    f(
        "regs.gdpr",
        Flag,
        SetFlag,
        "GDPR applies: personal data only with consent",
    ),
    f("regs.us_privacy", Str, Private, "CCPA opt-out: no personal data"),
    f("regs.gpp", Str, Private, "GPP opt-out: no personal data"),
    f("regs.gpp_sid", IntList, Private, "GPP sections in force"),
    f("regs.ext", Object, Private, "2.5 placements"),
    f("regs.ext.gdpr", Flag, SetFlag, "GDPR applies (2.5)"),
    f("regs.ext.us_privacy", Str, Private, "CCPA (2.5)"),
    f("regs.ext.gpp", Str, Private, "GPP (2.5)"),
    f("regs.ext.gpp_sid", IntList, Private, "GPP sections (2.5)"),
];

/// How a field was treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum How {
    /// (a) Coerced to its type.
    Coerced,
    /// (b) Given its restrictive reading.
    Restricted,
    /// (c) Dropped.
    Ignored,
}

impl How {
    /// The `how` label of `bullseye_request_fields_ignored_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            How::Coerced => "coerced",
            How::Restricted => "restricted",
            How::Ignored => "ignored",
        }
    }
}

/// One field treated by the repair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repair {
    /// The field's path, as in [`FIELDS`].
    pub field: &'static str,
    /// What was done.
    pub how: How,
}

/// What the restrictive readings decided, to mark on the typed request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    blocks: bool,
    privacy: bool,
    imps: Vec<usize>,
    deals: Vec<(usize, usize)>,
}

impl Marks {
    /// Marks the decoded request: blocks and privacy on the request, an
    /// invalid floor on each impression and deal that may not be bid.
    pub fn apply(&self, request: &mut BidRequest) {
        request.unreadable.blocks |= self.blocks;
        request.unreadable.privacy |= self.privacy;
        for &i in &self.imps {
            if let Some(imp) = request.imp.get_mut(i) {
                imp.bidfloor = Some(Floor::Invalid);
            }
        }
        for &(i, j) in &self.deals {
            let deal = request
                .imp
                .get_mut(i)
                .and_then(|imp| imp.pmp.as_mut())
                .and_then(|pmp| pmp.deals.get_mut(j));
            if let Some(deal) = deal {
                deal.bidfloor = Some(Floor::Invalid);
            }
        }
    }
}

/// A request repaired for the typed decoder.
#[derive(Debug)]
pub struct Repaired {
    /// The repaired request, as JSON.
    pub json: String,
    /// Every field treated, in the order met.
    pub repairs: Vec<Repair>,
    /// The restrictive readings to mark once decoded.
    pub marks: Marks,
}

/// Why a body cannot be repaired into a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unrepairable {
    /// Not JSON (serde's message).
    NotJson(String),
    /// JSON, but not an object.
    NotObject,
    /// The impression at this position is not an object.
    ImpNotObject(usize),
}

/// Where in the request a field sits: the impression and deal it belongs to.
#[derive(Clone, Copy, Default)]
struct Scope {
    imp: Option<usize>,
    deal: Option<usize>,
}

struct Walk {
    repairs: Vec<Repair>,
    marks: Marks,
}

impl Walk {
    fn restrict(&mut self, field: &Field, scope: Scope) {
        match field.class {
            BlocksRequest => self.marks.blocks = true,
            Private => self.marks.privacy = true,
            BlocksImp => self.marks.imps.extend(scope.imp),
            BlocksDeal => {
                if let (Some(imp), Some(deal)) = (scope.imp, scope.deal) {
                    self.marks.deals.push((imp, deal));
                }
            }
            Optional | Required | SetFlag => {}
        }
    }
}

/// What checking a value against its kind found.
enum Check {
    Fits,
    Coerced(Value),
    /// Fits, once these list elements (indices, descending) are dropped.
    DropElements(Vec<usize>),
    Unfit,
}

fn int_of(value: &Value, narrow: bool) -> Option<i64> {
    let n = match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|x| x.fract() == 0.0 && x.abs() < 9.0e15)
                .map(|x| x as i64)
        })?,
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        _ => return None,
    };
    (!narrow || i32::try_from(n).is_ok()).then_some(n)
}

fn number_of(value: &Value) -> Option<Value> {
    let text = value.as_str()?.trim();
    let x: f64 = text.parse().ok().filter(|x: &f64| x.is_finite())?;
    let plain = text.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
    plain.then(|| Number::from_f64(x).map(Value::Number))?
}

fn flag_fits(value: &Value) -> bool {
    match value {
        Value::Number(_) | Value::Bool(_) => true,
        Value::String(s) => matches!(
            s.trim(),
            "1" | "true" | "TRUE" | "True" | "0" | "false" | "FALSE" | "False" | ""
        ),
        _ => false,
    }
}

fn check(kind: Kind, value: &Value) -> Check {
    let fits = |ok: bool| if ok { Check::Fits } else { Check::Unfit };
    match kind {
        Str => match value {
            Value::String(_) => Check::Fits,
            Value::Number(n) => Check::Coerced(Value::String(n.to_string())),
            _ => Check::Unfit,
        },
        Int | Int32 => match value {
            Value::Number(n) if kind == Int && n.is_i64() => Check::Fits,
            Value::Number(n) if n.as_i64().is_some_and(|x| i32::try_from(x).is_ok()) => Check::Fits,
            _ => int_of(value, kind == Int32).map_or(Check::Unfit, |n| Check::Coerced(Value::from(n))),
        },
        Num | Floor => match value {
            Value::Number(_) => Check::Fits,
            _ => number_of(value).map_or(Check::Unfit, Check::Coerced),
        },
        Flag => fits(flag_fits(value)),
        Any => Check::Fits,
        Object => fits(value.is_object()),
        ObjectList => match value {
            Value::Array(items) => {
                let bad: Vec<usize> = (0..items.len()).rev().filter(|&i| !items[i].is_object()).collect();
                if bad.is_empty() {
                    Check::Fits
                } else {
                    Check::DropElements(bad)
                }
            }
            Value::Object(_) => Check::Coerced(Value::Array(vec![value.clone()])),
            _ => Check::Unfit,
        },
        StrList => match value {
            Value::Array(items) => list_elements(items, Str),
            Value::String(_) | Value::Number(_) => match check(Str, value) {
                Check::Coerced(one) => Check::Coerced(Value::Array(vec![one])),
                _ => Check::Coerced(Value::Array(vec![value.clone()])),
            },
            _ => Check::Unfit,
        },
        IntList => match value {
            Value::Array(items) => list_elements(items, Int32),
            _ => int_of(value, true).map_or(Check::Unfit, |n| Check::Coerced(Value::Array(vec![Value::from(n)]))),
        },
    }
}

/// A list whose elements must be of `kind`: coerced element by element,
/// elements that cannot be dropped.
fn list_elements(items: &[Value], kind: Kind) -> Check {
    let mut coerced: Option<Vec<Value>> = None;
    let mut bad = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match check(kind, item) {
            Check::Fits => {}
            Check::Coerced(value) => coerced.get_or_insert_with(|| items.to_vec())[i] = value,
            _ => bad.push(i),
        }
    }
    match (coerced, bad.is_empty()) {
        (None, true) => Check::Fits,
        (Some(list), true) => Check::Coerced(Value::Array(list)),
        (_, false) => {
            bad.reverse();
            Check::DropElements(bad)
        }
    }
}

/// The field name of a path's last segment, and whether it is a list.
fn leaf(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

fn parent(path: &str) -> &str {
    path.rfind('.').map_or("", |at| &path[..at])
}

fn walk(object: &mut Map<String, Value>, at: &str, scope: Scope, out: &mut Walk) -> Result<(), Unrepairable> {
    for field in FIELDS.iter().filter(|field| parent(field.path) == at) {
        let name = leaf(field.path);
        let Some(value) = object.get_mut(name) else { continue };
        if value.is_null() {
            continue;
        }
        match check(field.kind, value) {
            Check::Fits => {}
            // The impressions must come as a list: one object is not
            // taken for a list of one (a request that malformed is refused).
            Check::Coerced(_) if field.class == Required && field.kind == ObjectList => {
                treat_unfit(object, field, scope, out);
                continue;
            }
            Check::Coerced(coerced) => {
                *value = coerced;
                out.repairs.push(Repair {
                    field: field.path,
                    how: How::Coerced,
                });
            }
            Check::DropElements(bad) => {
                if field.path == "imp" {
                    return Err(Unrepairable::ImpNotObject(bad[bad.len() - 1]));
                }
                let restrictive = !matches!(field.class, Optional | Required);
                if restrictive {
                    treat_unfit(object, field, scope, out);
                    continue;
                }
                if let Value::Array(items) = value {
                    for i in bad {
                        items.remove(i);
                    }
                    // The elements that are left may need coercing.
                    if let Check::Coerced(coerced) = check(field.kind, value) {
                        *value = coerced;
                    }
                }
                out.repairs.push(Repair {
                    field: field.path,
                    how: How::Ignored,
                });
            }
            Check::Unfit => {
                treat_unfit(object, field, scope, out);
                continue;
            }
        }
        if let Some(value) = object.get_mut(name) {
            descend(field, value, scope, out)?;
        }
    }
    Ok(())
}

/// Walks the fields of an object, or of each object of a list.
fn descend(field: &Field, value: &mut Value, scope: Scope, out: &mut Walk) -> Result<(), Unrepairable> {
    match (field.kind, value) {
        (Object, Value::Object(inner)) => walk(inner, field.path, scope, out),
        (ObjectList, Value::Array(items)) => {
            let path = format!("{}[]", field.path);
            for (i, item) in items.iter_mut().enumerate() {
                let scope = match field.path {
                    "imp" => Scope {
                        imp: Some(i),
                        deal: None,
                    },
                    "imp[].pmp.deals" => Scope { deal: Some(i), ..scope },
                    _ => scope,
                };
                if let Value::Object(inner) = item {
                    walk(inner, &path, scope, out)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A field that cannot be read: set (for flags), or dropped, with its
/// class's restrictive reading.
fn treat_unfit(object: &mut Map<String, Value>, field: &Field, scope: Scope, out: &mut Walk) {
    let name = leaf(field.path);
    let how = match field.class {
        SetFlag => {
            object.insert(name.to_string(), Value::from(1));
            How::Restricted
        }
        Optional | Required => {
            object.remove(name);
            How::Ignored
        }
        _ => {
            object.remove(name);
            out.restrict(field, scope);
            How::Restricted
        }
    };
    out.repairs.push(Repair { field: field.path, how });
}

/// Repairs a request body whose typed decoding failed.
pub fn repair(text: &str) -> Result<Repaired, Unrepairable> {
    let mut value: Value = serde_json::from_str(text).map_err(|e| Unrepairable::NotJson(e.to_string()))?;
    let Value::Object(object) = &mut value else {
        return Err(Unrepairable::NotObject);
    };
    let mut out = Walk {
        repairs: Vec::new(),
        marks: Marks::default(),
    };
    walk(object, "", Scope::default(), &mut out)?;
    Ok(Repaired {
        json: value.to_string(),
        repairs: out.repairs,
        marks: out.marks,
    })
}

/// The README's table of the fields the bidder reads (Markdown).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| field | type | wrong type that cannot be coerced | what the bidder does with it |\n|---|---|---|---|\n",
    );
    for field in FIELDS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            field.path,
            field.kind.name(),
            field.class.describe(),
            field.what
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(json: &str) -> (Value, Vec<(&'static str, How)>, Marks) {
        let r = repair(json).unwrap();
        let repairs = r.repairs.iter().map(|r| (r.field, r.how)).collect();
        (serde_json::from_str(&r.json).unwrap(), repairs, r.marks)
    }

    #[test]
    fn coercions_are_applied_and_reported() {
        let (value, repairs, marks) = repaired(
            r#"{"id":7,"imp":[{"id":1,"banner":{"w":"300","h":250.0}}],"user":{"yob":"1984"},"site":{"cat":"IAB1"},"bcat":"IAB25"}"#,
        );
        assert_eq!(value["id"], "7");
        assert_eq!(value["imp"][0]["id"], "1");
        assert_eq!(value["imp"][0]["banner"]["w"], 300);
        assert_eq!(value["imp"][0]["banner"]["h"], 250);
        assert_eq!(value["user"]["yob"], 1984);
        assert_eq!(value["site"]["cat"], serde_json::json!(["IAB1"]));
        assert_eq!(value["bcat"], serde_json::json!(["IAB25"]));
        assert_eq!(marks, Marks::default());
        assert!(repairs.iter().all(|(_, how)| *how == How::Coerced), "{repairs:?}");
        assert_eq!(repairs.len(), 7);
    }

    #[test]
    fn restrictive_fields_take_the_restrictive_reading() {
        let (value, repairs, marks) = repaired(
            r#"{"id":"r","imp":[{"id":"1","banner":{},"bidfloor":"cheap","pmp":{"private_auction":"yes","deals":[{"id":"D","bidfloor":{}}]}}],
               "bcat":{"x":1},"regs":{"coppa":"yes","us_privacy":5.5e300,"gpp":[]},"device":{"lmt":{}}}"#,
        );
        assert_eq!(value["regs"]["coppa"], 1);
        assert_eq!(value["device"]["lmt"], 1);
        assert_eq!(value["imp"][0]["pmp"]["private_auction"], 1);
        assert!(value.get("bcat").is_none());
        assert!(value["imp"][0].get("bidfloor").is_none());
        assert_eq!(
            marks,
            Marks {
                blocks: true,
                privacy: true,
                imps: vec![0],
                deals: vec![(0, 0)],
            }
        );
        assert!(repairs.contains(&("regs.us_privacy", How::Coerced)), "{repairs:?}");
        assert!(repairs.contains(&("regs.gpp", How::Restricted)));
    }

    #[test]
    fn other_fields_are_dropped() {
        let (value, repairs, _) =
            repaired(r#"{"id":"r","imp":[{"id":"1","banner":{"format":[{"w":300,"h":250},7]}}],"site":"x","tmax":{}}"#);
        assert!(value.get("site").is_none());
        assert!(value.get("tmax").is_none());
        assert_eq!(
            value["imp"][0]["banner"]["format"],
            serde_json::json!([{"w":300,"h":250}])
        );
        assert_eq!(
            repairs,
            [
                ("imp[].banner.format", How::Ignored),
                ("site", How::Ignored),
                ("tmax", How::Ignored)
            ]
        );
    }

    #[test]
    fn a_block_list_with_an_unreadable_element_blocks() {
        let (_, _, marks) = repaired(r#"{"id":"r","imp":[{"id":"1","banner":{}}],"badv":["a.com",{"x":1}]}"#);
        assert!(marks.blocks);
        let (value, _, marks) = repaired(r#"{"id":"r","imp":[{"id":"1","banner":{}}],"site":{"cat":["IAB1",{}]}}"#);
        assert!(!marks.blocks);
        assert_eq!(value["site"]["cat"], serde_json::json!(["IAB1"]));
    }

    #[test]
    fn what_cannot_be_a_request_is_refused() {
        assert!(matches!(repair("[1]"), Err(Unrepairable::NotObject)));
        assert!(matches!(repair("{"), Err(Unrepairable::NotJson(_))));
        let (value, _, _) = repaired(r#"{"id":"r","imp":{"id":"1","banner":{}}}"#);
        assert!(value.get("imp").is_none(), "one impression object is not a list");
        assert_eq!(
            repair(r#"{"id":"r","imp":[{"id":"1"},3]}"#).unwrap_err(),
            Unrepairable::ImpNotObject(1)
        );
    }

    #[test]
    fn every_path_has_its_parent_before_it() {
        for (i, field) in FIELDS.iter().enumerate() {
            let parent = parent(field.path).trim_end_matches("[]");
            if !parent.is_empty() {
                assert!(
                    FIELDS[..i].iter().any(|f| f.path == parent),
                    "{} has no parent before it",
                    field.path
                );
            }
        }
    }
}
