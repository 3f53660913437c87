//! The check of a query expression before any frame is judged: a function,
//! macro, field or attribute the expression names must exist, or the query is
//! an error naming the column and the nearest known name, instead of a query
//! that quietly selects nothing.
//!
//! Done in two steps: [`check_expr`] at compile time (functions, macros, the
//! fields of objects, predictions and boxes, which are the same in every
//! version), collecting the attribute names the expression reads; then
//! [`Refs::check`] once per query against the attribute names and value kinds
//! of the version queried (recorded in its index, see `codec.rs`).

use std::collections::{BTreeMap, HashSet};

use cel_interpreter::IdedExpr;
use cel_parser::ast::{Expr, operators};
use cel_parser::reference::Val;

use crate::error::{Error, Result};

/// Kinds of values an attribute takes in a version (a bit mask).
pub type Kinds = u8;
/// A boolean value.
pub const KIND_BOOL: Kinds = 1;
/// An integer or a float.
pub const KIND_NUM: Kinds = 2;
/// A string.
pub const KIND_STR: Kinds = 4;

/// The frame attributes of a version: name -> kinds of values seen.
pub type Schema = BTreeMap<String, Kinds>;

/// The functions a query may call (the interpreter's standard ones).
const FUNCTIONS: &[&str] = &[
    "contains",
    "size",
    "max",
    "min",
    "startsWith",
    "endsWith",
    "string",
    "bytes",
    "double",
    "int",
    "uint",
    "matches",
];

/// Macros the parser expands (named in suggestions; a call that reaches the
/// checker under one of these names had the wrong number of arguments).
const MACROS: &[&str] = &["has", "all", "exists", "exists_one", "map", "filter"];

/// Fields of an object map.
const OBJECT_FIELDS: &[&str] = &["class", "box", "area", "id", "attributes", "kind"];
/// Fields of a prediction map.
const PREDICTION_FIELDS: &[&str] = &["class", "box", "area", "score"];
/// Fields of a box map.
const BOX_FIELDS: &[&str] = &["x", "y", "w", "h"];

/// What the checker knows of a value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Unknown,
    /// A frame attribute (a scalar).
    Attr,
    Objects,
    Object,
    Predictions,
    Prediction,
    Box,
    /// `attrs`.
    Attrs,
    /// `labels`.
    Labels,
    Scalar,
}

/// An attribute the expression reads, and how.
#[derive(Debug, Clone)]
struct AttrRef {
    name: String,
    /// Read as a bare identifier (`weather`) rather than `attrs.weather`.
    bare: bool,
    /// A bare identifier a value is compared with (`weather == rain`): maybe
    /// a string without its quotes.
    value: bool,
}

/// What the version-dependent check needs: the attributes read (outside
/// `has()`), and the attributes compared with a literal of a kind.
#[derive(Debug, Clone, Default)]
pub(crate) struct Refs {
    attrs: Vec<AttrRef>,
    /// Attributes tested with `has(attrs.NAME)`: declared optional, so read
    /// without error even in a version where no frame has them.
    tested: HashSet<String>,
    compared: Vec<(String, Kinds, String)>,
}

/// An identifier token of the source: where it is, and what surrounds it.
struct Token {
    name: String,
    line: usize,
    column: usize,
    after_dot: bool,
    before_paren: bool,
}

/// Identifier tokens outside string literals, to name the column of a name.
fn tokens(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut line_start) = (0, 1, 0);
    let mut last_sig: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            line_start = i + 1;
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            let triple = chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c);
            let raw = i > 0 && matches!(chars[i - 1], 'r' | 'R');
            i += if triple { 3 } else { 1 };
            while i < chars.len() {
                if chars[i] == '\\' && !raw {
                    i += 2;
                    continue;
                }
                if chars[i] == '\n' {
                    line += 1;
                    line_start = i + 1;
                }
                if chars[i] == c
                    && (!triple || (chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c)))
                {
                    i += if triple { 3 } else { 1 };
                    break;
                }
                i += 1;
            }
            last_sig = Some(c);
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            out.push(Token {
                name,
                line,
                column: start - line_start + 1,
                after_dot: last_sig == Some('.'),
                before_paren: next == Some(&'('),
            });
            last_sig = Some('a');
            continue;
        }
        if !c.is_whitespace() {
            last_sig = Some(c);
        }
        i += 1;
    }
    out
}

/// What kind of name is looked for in the source.
#[derive(Clone, Copy)]
enum Place {
    Ident,
    Field,
    Function,
}

/// "column C" (or "line L, column C" in a multi-line expression) of a name.
fn place(src: &str, name: &str, what: Place) -> String {
    let t = tokens(src);
    let hit = t.iter().find(|t| {
        t.name == name
            && match what {
                Place::Ident => !t.after_dot && !t.before_paren,
                Place::Field => t.after_dot && !t.before_paren,
                Place::Function => t.before_paren,
            }
    });
    let (line, column) = hit.map_or((1, 1), |t| (t.line, t.column));
    if src.contains('\n') {
        format!("line {line}, column {column}")
    } else {
        format!("column {column}")
    }
}

/// The known name nearest to `name`, if near enough to be a typo of it.
fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count().max(3) / 3).max(1);
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| k)
}

fn did_you_mean(s: Option<&str>) -> String {
    s.map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

/// Up to 20 names, comma-separated, then how many more.
fn listing<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> String {
    let n = names.len();
    let s: Vec<&str> = names.take(20).collect();
    let more = n.saturating_sub(s.len());
    let mut out = s.join(", ");
    if more > 0 {
        out.push_str(&format!(", and {more} more"));
    }
    out
}

struct Checker<'a> {
    src: &'a str,
    /// Comprehension variables in scope, with their element type.
    scope: Vec<(String, Ty)>,
    refs: Refs,
}

fn literal_kind(v: &Val) -> Option<Kinds> {
    match v {
        Val::String(_) => Some(KIND_STR),
        Val::Boolean(_) => Some(KIND_BOOL),
        Val::Int(_) | Val::UInt(_) | Val::Double(_) => Some(KIND_NUM),
        _ => None,
    }
}

fn literal_text(v: &Val) -> String {
    match v {
        Val::String(s) => format!("{s:?}"),
        Val::Boolean(b) => b.to_string(),
        Val::Int(i) => i.to_string(),
        Val::UInt(u) => u.to_string(),
        Val::Double(d) => d.to_string(),
        _ => String::new(),
    }
}

impl Checker<'_> {
    fn err(&self, name: &str, what: Place, msg: String) -> Error {
        Error::Query(format!("query: {}: {msg}", place(self.src, name, what)))
    }

    fn bound(&self, name: &str) -> Option<Ty> {
        self.scope
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
    }

    /// The attribute an expression reads directly, if it is one: a bare
    /// identifier or `attrs.NAME`.
    fn attr_of(&self, e: &IdedExpr) -> Option<String> {
        match &e.expr {
            Expr::Ident(n) if self.bound(n).is_none() && !super::RESERVED.contains(&n.as_str()) => {
                Some(n.clone())
            }
            Expr::Select(s) if !s.test => match &s.operand.expr {
                Expr::Ident(n) if n == "attrs" && self.bound(n).is_none() => Some(s.field.clone()),
                _ => None,
            },
            _ => None,
        }
    }

    fn fields_error(&self, field: &str, of: &str, fields: &[&str]) -> Error {
        self.err(
            field,
            Place::Field,
            format!(
                "{of} have no field `{field}`{} (fields: {})",
                did_you_mean(nearest(field, fields.iter().copied())),
                fields.join(", ")
            ),
        )
    }

    fn expr(&mut self, e: &IdedExpr) -> Result<Ty> {
        Ok(match &e.expr {
            Expr::Literal(_) => Ty::Scalar,
            Expr::Ident(n) => match self.bound(n) {
                Some(t) => t,
                None => match n.as_str() {
                    "objects" => Ty::Objects,
                    "predictions" => Ty::Predictions,
                    "labels" => Ty::Labels,
                    "attrs" => Ty::Attrs,
                    "path" | "width" | "height" => Ty::Scalar,
                    _ => {
                        self.refs.attrs.push(AttrRef {
                            name: n.clone(),
                            bare: true,
                            value: false,
                        });
                        Ty::Attr
                    }
                },
            },
            Expr::Select(s) => {
                let t = self.expr(&s.operand)?;
                let f = s.field.as_str();
                let known = |fields: &[&str]| fields.contains(&f);
                match t {
                    Ty::Object if !known(OBJECT_FIELDS) => {
                        return Err(self.fields_error(f, "objects", OBJECT_FIELDS));
                    }
                    Ty::Prediction if !known(PREDICTION_FIELDS) => {
                        return Err(self.fields_error(f, "predictions", PREDICTION_FIELDS));
                    }
                    Ty::Box if !known(BOX_FIELDS) => {
                        return Err(self.fields_error(f, "boxes", BOX_FIELDS));
                    }
                    Ty::Object | Ty::Prediction if f == "box" => Ty::Box,
                    Ty::Object | Ty::Prediction if f == "attributes" => Ty::Unknown,
                    Ty::Object | Ty::Prediction | Ty::Box => Ty::Scalar,
                    Ty::Attrs => {
                        // `has(attrs.x)` is how an optional attribute is tested:
                        // a name absent from the version is simply false there.
                        if s.test {
                            self.refs.tested.insert(s.field.clone());
                        } else {
                            self.refs.attrs.push(AttrRef {
                                name: s.field.clone(),
                                bare: false,
                                value: false,
                            });
                        }
                        Ty::Attr
                    }
                    Ty::Attr | Ty::Scalar | Ty::Objects | Ty::Predictions | Ty::Labels => {
                        return Err(self.err(
                            f,
                            Place::Field,
                            format!("`.{f}`: a {} has no fields", ty_name(t)),
                        ));
                    }
                    Ty::Unknown => Ty::Unknown,
                }
            }
            Expr::Call(c) => self.call(c)?,
            Expr::List(l) => {
                for x in &l.elements {
                    self.expr(x)?;
                }
                Ty::Unknown
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    match &entry.expr {
                        cel_parser::ast::EntryExpr::MapEntry(me) => {
                            self.expr(&me.key)?;
                            self.expr(&me.value)?;
                        }
                        cel_parser::ast::EntryExpr::StructField(sf) => {
                            return Err(self.err(
                                &sf.field,
                                Place::Ident,
                                "message fields are not supported".into(),
                            ));
                        }
                    }
                }
                Ty::Unknown
            }
            Expr::Comprehension(c) => {
                let range = self.expr(&c.iter_range)?;
                let elem = match range {
                    Ty::Objects => Ty::Object,
                    Ty::Predictions => Ty::Prediction,
                    Ty::Labels | Ty::Attrs => Ty::Scalar,
                    Ty::Attr | Ty::Scalar | Ty::Object | Ty::Prediction | Ty::Box => {
                        return Err(Error::Query(format!(
                            "query: `{}` loops over a {}, not a list or map",
                            c.iter_var,
                            ty_name(range)
                        )));
                    }
                    Ty::Unknown => Ty::Unknown,
                };
                self.expr(&c.accu_init)?;
                self.scope.push((c.accu_var.clone(), Ty::Unknown));
                self.scope.push((c.iter_var.clone(), elem));
                if let Some(v2) = &c.iter_var2 {
                    self.scope.push((v2.clone(), Ty::Unknown));
                }
                let r = (|| {
                    self.expr(&c.loop_cond)?;
                    self.expr(&c.loop_step)?;
                    self.expr(&c.result)
                })();
                self.scope
                    .truncate(self.scope.len() - 2 - usize::from(c.iter_var2.is_some()));
                r?;
                Ty::Unknown
            }
            Expr::Struct(s) => {
                return Err(Error::Query(format!(
                    "query: message construction (`{} {{...}}`) is not supported",
                    s.type_name
                )));
            }
            Expr::Unspecified => Ty::Unknown,
        })
    }

    fn call(&mut self, c: &cel_parser::ast::CallExpr) -> Result<Ty> {
        let name = c.func_name.as_str();
        let operator = name.starts_with('_')
            || name.starts_with('@')
            || name.starts_with('!')
            || name.starts_with('-');
        if !operator && !FUNCTIONS.contains(&name) {
            let known = FUNCTIONS.iter().chain(MACROS).copied();
            let msg = if MACROS.contains(&name) {
                format!("`{name}` takes a different number of arguments here")
            } else {
                format!(
                    "unknown function `{name}`{} (functions: {}; macros: {})",
                    did_you_mean(nearest(name, known)),
                    FUNCTIONS.join(", "),
                    MACROS.join(", ")
                )
            };
            return Err(self.err(name, Place::Function, msg));
        }
        let target = match &c.target {
            Some(t) => Some(self.expr(t)?),
            None => None,
        };
        let mut args = Vec::with_capacity(c.args.len());
        for a in &c.args {
            args.push(self.expr(a)?);
        }
        if matches!(name, operators::EQUALS | operators::NOT_EQUALS)
            && let [a, b] = c.args.as_slice()
        {
            if let Expr::Ident(n) = &b.expr
                && let Some(r) = self
                    .refs
                    .attrs
                    .iter_mut()
                    .rev()
                    .find(|r| r.bare && &r.name == n)
            {
                r.value = true;
            }
            for (x, y) in [(a, b), (b, a)] {
                if let (Some(attr), Expr::Literal(v)) = (self.attr_of(x), &y.expr)
                    && let Some(k) = literal_kind(v)
                {
                    self.refs.compared.push((attr, k, literal_text(v)));
                }
            }
        }
        if name == operators::IN
            && let [a, b] = c.args.as_slice()
            && let (Some(attr), Expr::List(l)) = (self.attr_of(a), &b.expr)
        {
            let mut kinds = 0;
            for x in &l.elements {
                match &x.expr {
                    Expr::Literal(v) => kinds |= literal_kind(v).unwrap_or(0xff),
                    _ => kinds = 0xff,
                }
            }
            if kinds != 0xff && kinds != 0 {
                let text = l
                    .elements
                    .iter()
                    .filter_map(|x| match &x.expr {
                        Expr::Literal(v) => Some(literal_text(v)),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                self.refs.compared.push((attr, kinds, format!("[{text}]")));
            }
        }
        Ok(match (name, target, args.as_slice()) {
            (operators::INDEX, _, [Ty::Objects, _]) => Ty::Object,
            (operators::INDEX, _, [Ty::Predictions, _]) => Ty::Prediction,
            (operators::INDEX, _, [Ty::Attrs, _]) => {
                if let Some(Expr::Literal(Val::String(k))) = c.args.get(1).map(|a| &a.expr) {
                    self.refs.attrs.push(AttrRef {
                        name: k.clone(),
                        bare: false,
                        value: false,
                    });
                }
                Ty::Attr
            }
            _ => Ty::Unknown,
        })
    }
}

fn ty_name(t: Ty) -> &'static str {
    match t {
        Ty::Attr => "frame attribute",
        Ty::Scalar => "scalar",
        Ty::Object => "object",
        Ty::Prediction => "prediction",
        Ty::Box => "box",
        Ty::Objects | Ty::Predictions | Ty::Labels => "list",
        Ty::Attrs => "map",
        Ty::Unknown => "value",
    }
}

/// Checks what does not depend on the version (functions, macros, fields of
/// objects, predictions and boxes); returns the attribute references to check
/// against a version with [`Refs::check`].
pub(crate) fn check_expr(src: &str, e: &IdedExpr) -> Result<Refs> {
    let mut c = Checker {
        src,
        scope: Vec::new(),
        refs: Refs::default(),
    };
    c.expr(e)?;
    Ok(c.refs)
}

fn kinds_name(k: Kinds) -> String {
    let mut v = Vec::new();
    if k & KIND_BOOL != 0 {
        v.push("a bool");
    }
    if k & KIND_NUM != 0 {
        v.push("a number");
    }
    if k & KIND_STR != 0 {
        v.push("a string");
    }
    v.join(" or ")
}

impl Refs {
    /// Checks the attribute names and literal comparisons against a version's
    /// attributes: an unknown name is an error with the nearest known one and
    /// the list of them; a comparison that can never be true (a string
    /// attribute with a number) is an error.
    pub(crate) fn check(&self, src: &str, schema: &Schema) -> Result<()> {
        let mut seen = HashSet::new();
        for r in &self.attrs {
            if schema.contains_key(&r.name)
                || self.tested.contains(&r.name)
                || !seen.insert(&r.name)
            {
                continue;
            }
            let what = if r.bare { Place::Ident } else { Place::Field };
            let near = nearest(&r.name, schema.keys().map(String::as_str));
            let mut msg = format!("unknown attribute `{}`", r.name);
            if near.is_none() && r.value {
                msg.push_str(&format!(" (for a string, write \"{}\")", r.name));
            }
            if schema.is_empty() {
                msg.push_str("; this version has no frame attributes");
            } else {
                msg.push_str(&format!(
                    "{} (attributes in this version: {})",
                    did_you_mean(near),
                    listing(schema.keys().map(String::as_str))
                ));
            }
            let at = place(src, &r.name, what);
            // `attrs["x"]` names the attribute inside a string.
            let at = if r.bare || tokens(src).iter().any(|t| t.name == r.name && t.after_dot) {
                at
            } else {
                "in attrs[...]".into()
            };
            return Err(Error::Query(format!("query: {at}: {msg}")));
        }
        for (name, k, lit) in &self.compared {
            if let Some(have) = schema.get(name)
                && have & k == 0
            {
                return Err(Error::Query(format!(
                    "query: {}: `{name}` is {} in this version, never equal to {lit}",
                    place(src, name, Place::Ident),
                    kinds_name(*have)
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(names: &[(&str, Kinds)]) -> Schema {
        names.iter().map(|(n, k)| (n.to_string(), *k)).collect()
    }

    fn check(src: &str, s: &Schema) -> std::result::Result<(), String> {
        let ast = cel_parser::Parser::default().parse(src).unwrap();
        check_expr(src, &ast)
            .and_then(|r| r.check(src, s))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn unknown_names_are_errors_with_the_column_and_a_suggestion() {
        let s = schema(&[("weather", KIND_STR), ("lux", KIND_NUM)]);
        let e = check("nosuchfn(1)", &s).unwrap_err();
        assert!(
            e.starts_with("query: column 1: unknown function `nosuchfn`"),
            "{e}"
        );
        let e = check(r#"objects.exist(o, o.class == "bus")"#, &s).unwrap_err();
        assert!(
            e.starts_with("query: column 9: unknown function `exist`; did you mean `exists`?"),
            "{e}"
        );
        let e = check("weather == rain", &s).unwrap_err();
        assert_eq!(
            e,
            "query: column 12: unknown attribute `rain` (for a string, write \"rain\") \
             (attributes in this version: lux, weather)"
        );
        let e = check(r#"objects.exists(o, o.klass == "bus")"#, &s).unwrap_err();
        assert!(
            e.starts_with("query: column 21: objects have no field `klass`; did you mean `class`?"),
            "{e}"
        );
        let e = check(r#"weathr == "rain""#, &s).unwrap_err();
        assert!(
            e.starts_with("query: column 1: unknown attribute `weathr`; did you mean `weather`?"),
            "{e}"
        );
        let e = check(r#"attrs.weathr == "rain""#, &s).unwrap_err();
        assert!(
            e.starts_with("query: column 7: unknown attribute `weathr`"),
            "{e}"
        );
        let e = check("weather == 1", &s).unwrap_err();
        assert!(e.contains("`weather` is a string in this version"), "{e}");
        let e = check("objects.exists(o, o.box.z > 1.0)", &s).unwrap_err();
        assert!(e.contains("boxes have no field `z`"), "{e}");
        let e = check(r#"x == 1"#, &Schema::new()).unwrap_err();
        assert!(e.contains("this version has no frame attributes"), "{e}");
        for ok in [
            r#"has(attrs.weather) && weather == "rain""#,
            r#"has(attrs.nothere)"#,
            r#"has(attrs.nothere) && nothere == 1"#,
            r#"objects.exists(o, o.class == "bus" && o.box.w > 3.0) && lux > 2"#,
            r#"predictions.exists(p, p.score < 0.5 && !objects.exists(o, o.class == p.class))"#,
            r#"objects.filter(o, o.class == "car").size() > 3 && path.startsWith("a")"#,
            r#"size(objects) == 0 || objects[0].class in ["a", "b"]"#,
            r#"weather in ["rain", "snow"] && labels.exists(l, l.endsWith(".txt"))"#,
            r#"attrs.exists(k, k == "weather") && width > 10"#,
        ] {
            check(ok, &s).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn names_inside_strings_do_not_give_the_column() {
        let s = schema(&[("weather", KIND_STR)]);
        let e = check(r#"path == "rain" && rain == 1"#, &s).unwrap_err();
        assert!(
            e.starts_with("query: column 19: unknown attribute `rain`"),
            "{e}"
        );
    }
}
