//! Queries over frames: CEL expressions (the Common Expression Language, through
//! the `cel-interpreter` crate) evaluated once per frame of a version.
//!
//! Each frame is seen as these variables:
//! - `path` (string), `width`, `height` (int, or null when unknown);
//! - `attrs` (map of frame attributes), and each attribute also by its name;
//! - `objects`: list of maps `{class, box: {x, y, w, h} | null, area, id, attributes}`;
//! - `predictions`: list of maps `{class, box, area, score}`;
//! - `labels`: list of the label files describing the frame.
//!
//! The expression is checked before any frame is judged (`check.rs`): an
//! unknown function, macro or field, or an attribute that no frame of the
//! version has, is an error naming the column and the nearest known name. A
//! frame the expression cannot be evaluated on is an error naming the frame:
//! reading an attribute or key the frame lacks (`weather == "rain"` on a frame
//! without `weather`) too, so an optional attribute is read after `has()`
//! (`has(attrs.weather) && weather == "rain"`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cel_interpreter::objects::{Key, Map};
use cel_interpreter::{Context, ExecutionError, Value};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::labels::{AttrValue, BBox, Object};
use crate::meta::Prediction;

pub mod build;
pub mod check;
pub mod codec;
mod derive;
pub mod index;
mod matches;
pub mod parse_cache;
pub mod pixels;
pub mod select;
mod sidecar;
pub mod stats;

pub use codec::FrameAccess;
pub use index::{
    FrameIndex, FrameRecord, QueryCache, rev_count, rev_frames_at, rev_index, rev_query,
    tree_count, tree_frame_count, tree_frames_at, tree_index, tree_positions, tree_query,
};

/// Variables every frame defines; attributes with these names are reachable only through `attrs`.
const RESERVED: &[&str] = &[
    "path",
    "attrs",
    "objects",
    "predictions",
    "labels",
    "width",
    "height",
];

/// A compiled query expression.
pub struct Query {
    source: String,
    /// The operands of the top-level `&&` chain, evaluated left to right with
    /// the interpreter's short-circuit rule, so a cheap test on an attribute
    /// spares building the objects of every frame it rejects.
    conjuncts: Vec<Conjunct>,
    /// Which fields of object and prediction maps to build: those whose name
    /// appears anywhere in the source (a superset of the ones it reads).
    fields: Fields,
    /// The attributes it reads, checked against each version queried.
    refs: check::Refs,
}

/// One operand of the top-level `&&` chain.
struct Conjunct {
    expr: cel_interpreter::IdedExpr,
    /// The variables it names: only those are built per frame (turning every
    /// object into a CEL map is most of the cost of a query).
    vars: HashSet<String>,
    /// When it names nothing but attributes, image dimensions and object
    /// classes: what its result depends on, and the results so far, so the
    /// result is computed once per distinct value (an expression is a pure
    /// function of its variables). Shared by all threads.
    memo: Option<(Vec<MemoVar>, Memo)>,
}

/// A variable whose value keys the memo of a conjunct.
enum MemoVar {
    Attr(String),
    Attrs,
    Width,
    Height,
    /// `objects` when the expression reads nothing of an object but its class:
    /// the classes in order.
    Classes,
    /// `objects` when, besides, the order of the objects cannot change the
    /// result ([`order_free`]): the classes sorted, so frames holding the same
    /// classes in another order share one result.
    ClassSet,
}

/// Whether `objects` appears in `e` only where the order of the objects cannot
/// change the result: as the argument of `size`, or as the range of an
/// `exists`, `all` or `exists_one` whose predicate only compares the object's
/// class with string literals (nothing there can fail, so no error depends on
/// which object came first). Conservative: anything else gives `false`.
fn order_free(e: &cel_interpreter::IdedExpr) -> bool {
    use cel_parser::ast::{Expr, operators};
    let is_objects =
        |e: &cel_interpreter::IdedExpr| matches!(&e.expr, Expr::Ident(n) if n == "objects");
    match &e.expr {
        Expr::Ident(n) => n != "objects",
        Expr::Literal(_) => true,
        Expr::Select(s) => order_free(&s.operand),
        Expr::List(l) => l.elements.iter().all(order_free),
        Expr::Call(c) => {
            let size_of_objects = c.func_name == "size"
                && match (&c.target, c.args.as_slice()) {
                    (Some(t), []) => is_objects(t),
                    (None, [a]) => is_objects(a),
                    _ => false,
                };
            size_of_objects
                || (c.func_name != operators::INDEX
                    && c.target.as_deref().is_none_or(order_free)
                    && c.args.iter().all(order_free))
        }
        Expr::Comprehension(c) if is_objects(&c.iter_range) => {
            // The parser's `exists`/`all` (a bool accumulator) and
            // `exists_one` (a count); `filter` and `map` build lists.
            let counts = matches!(
                &c.accu_init.expr,
                Expr::Literal(
                    cel_parser::reference::Val::Boolean(_) | cel_parser::reference::Val::Int(_)
                )
            );
            let safe = |x: &cel_interpreter::IdedExpr| class_test(x, &c.iter_var, &c.accu_var);
            counts && safe(&c.loop_cond) && safe(&c.loop_step) && safe(&c.result)
        }
        Expr::Comprehension(c) => {
            order_free(&c.iter_range)
                && order_free(&c.accu_init)
                && order_free(&c.loop_cond)
                && order_free(&c.loop_step)
                && order_free(&c.result)
        }
        _ => false,
    }
}

/// Whether `e`, part of a comprehension over `objects` with variable `var`
/// and accumulator `accu`, is built only from the accumulator, literals,
/// `var.class` compared with string literals (`==`, `!=`, `in` a list of
/// them), boolean operators, a conditional and adding an int to the
/// accumulator: nothing that can fail.
fn class_test(e: &cel_interpreter::IdedExpr, var: &str, accu: &str) -> bool {
    use cel_parser::ast::{Expr, operators};
    use cel_parser::reference::Val;
    let class = |x: &cel_interpreter::IdedExpr| {
        matches!(&x.expr, Expr::Select(s) if s.field == "class" && !s.test
            && matches!(&s.operand.expr, Expr::Ident(n) if n == var))
    };
    let string = |x: &cel_interpreter::IdedExpr| matches!(&x.expr, Expr::Literal(Val::String(_)));
    let is_accu = |x: &cel_interpreter::IdedExpr| matches!(&x.expr, Expr::Ident(n) if n == accu);
    match &e.expr {
        Expr::Ident(n) => n == accu,
        Expr::Literal(Val::Boolean(_) | Val::Int(_)) => true,
        Expr::Call(c) if c.target.is_none() => match (c.func_name.as_str(), c.args.as_slice()) {
            (operators::EQUALS | operators::NOT_EQUALS, [a, b]) => {
                (class(a) && string(b))
                    || (string(a) && class(b))
                    || (is_accu(a) && matches!(&b.expr, Expr::Literal(Val::Int(_))))
            }
            (operators::IN, [a, b]) => {
                class(a) && matches!(&b.expr, Expr::List(l) if l.elements.iter().all(string))
            }
            (operators::ADD, [a, b]) => is_accu(a) && matches!(&b.expr, Expr::Literal(Val::Int(_))),
            (
                operators::LOGICAL_AND
                | operators::LOGICAL_OR
                | operators::LOGICAL_NOT
                | operators::NOT_STRICTLY_FALSE
                | operators::CONDITIONAL,
                args,
            ) => args.iter().all(|a| class_test(a, var, accu)),
            _ => false,
        },
        _ => false,
    }
}

/// The result of one conjunct for one frame.
#[derive(Debug, Clone)]
enum Outcome {
    True,
    False,
    /// A missing attribute or key (its name, and whether it is a variable).
    Missing(String, bool),
    /// A lone expression gave something other than a bool (its type name).
    NotBool(&'static str),
    /// An evaluation error (message without the frame).
    Failed(String),
}

/// Results of a conjunct by the values it reads.
type Memo = std::sync::Mutex<MemoMap>;

/// A memo's map: keys are short encodings, hashed for speed (not DoS-hardened;
/// they come from the repository being queried).
type MemoMap = rustc_hash::FxHashMap<Vec<u8>, Outcome>;

/// Distinct keys a memo keeps: past this, results are computed without it.
const MEMO_CAP: usize = 1 << 16;

/// Fields of object and prediction maps, built only when the expression may read them.
#[derive(Debug, Clone, Copy)]
struct Fields {
    bbox: bool,
    area: bool,
    id: bool,
    attributes: bool,
    score: bool,
    kind: bool,
}

impl Fields {
    /// Whether object maps hold nothing but the class.
    fn class_only(self) -> bool {
        !(self.bbox || self.area || self.id || self.attributes || self.kind)
    }

    fn of(source: &str) -> Fields {
        Fields {
            bbox: source.contains("box"),
            area: source.contains("area"),
            id: source.contains("id"),
            attributes: source.contains("attributes"),
            score: source.contains("score"),
            kind: source.contains("kind"),
        }
    }
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Query({:?})", self.source)
    }
}

/// Appends the operands of a chain of `&&` (nested either way) in order.
fn conjuncts(e: cel_interpreter::IdedExpr, out: &mut Vec<cel_interpreter::IdedExpr>) {
    use cel_parser::ast::{Expr, operators};
    match e.expr {
        Expr::Call(call)
            if call.func_name == operators::LOGICAL_AND
                && call.target.is_none()
                && call.args.len() == 2 =>
        {
            for a in call.args {
                conjuncts(a, out);
            }
        }
        other => out.push(cel_interpreter::IdedExpr {
            id: e.id,
            expr: other,
        }),
    }
}

/// Appends the classes of a frame's objects sorted (count, then each), or
/// its in-order key when that does not read back.
fn class_set_key(f: &dyn FrameAccess, out: &mut Vec<u8>) {
    thread_local! {
        // The in-order key and where each class is in it: reused, as this
        // runs once per frame.
        static SCRATCH: std::cell::RefCell<(Vec<u8>, Vec<std::ops::Range<usize>>)> =
            const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    }
    SCRATCH.with(|cell| {
        let (raw, classes) = &mut *cell.borrow_mut();
        raw.clear();
        classes.clear();
        f.classes_key(raw);
        let mut r = codec::Reader::new(raw);
        let whole = r.count().is_some_and(|n| {
            (0..n).all(|_| {
                let Some(len) = r.count() else { return false };
                let start = raw.len() - r.rest_len();
                classes.push(start..start + len);
                r.take(len).is_some()
            })
        }) && r.done();
        if !whole {
            out.extend_from_slice(raw);
            return;
        }
        classes.sort_unstable_by(|a, b| raw[a.clone()].cmp(&raw[b.clone()]));
        codec::varint(out, classes.len() as u64);
        for c in classes.iter() {
            codec::varint(out, c.len() as u64);
            out.extend_from_slice(&raw[c.clone()]);
        }
    });
}

impl Conjunct {
    fn new(expr: cel_interpreter::IdedExpr, fields: Fields) -> Conjunct {
        let vars: HashSet<String> = expr
            .references()
            .variables()
            .into_iter()
            .map(str::to_string)
            .collect();
        let memo = vars
            .iter()
            .map(|v| match v.as_str() {
                "attrs" => Some(MemoVar::Attrs),
                "width" => Some(MemoVar::Width),
                "height" => Some(MemoVar::Height),
                "objects" if fields.class_only() && order_free(&expr) => Some(MemoVar::ClassSet),
                "objects" if fields.class_only() => Some(MemoVar::Classes),
                r if RESERVED.contains(&r) => None,
                a => Some(MemoVar::Attr(a.to_string())),
            })
            .collect::<Option<Vec<MemoVar>>>()
            .map(|v| (v, Memo::default()));
        Conjunct { expr, vars, memo }
    }

    /// The memo key of a frame: the values of the variables named.
    fn key(vars: &[MemoVar], f: &dyn FrameAccess, out: &mut Vec<u8>) {
        out.clear();
        for v in vars {
            match v {
                MemoVar::Attr(a) => f.attr_key(a, out),
                MemoVar::Attrs => f.attrs_key(out),
                MemoVar::Classes => f.classes_key(out),
                MemoVar::ClassSet => class_set_key(f, out),
                MemoVar::Width | MemoVar::Height => {
                    let (w, h) = f.size_px();
                    let x = if matches!(v, MemoVar::Width) { w } else { h };
                    out.extend_from_slice(&x.map_or(u64::MAX, u64::from).to_le_bytes());
                }
            }
        }
    }
}

impl Query {
    /// Compiles an expression; a syntax error names the line and column.
    pub fn compile(expr: &str) -> Result<Query> {
        if expr.trim().is_empty() {
            return Err(Error::Query("query: empty expression".into()));
        }
        let ast = compile_contained(expr)?.map_err(|errs| {
            let Some(e) = errs.errors.first() else {
                return Error::Query(format!("query: {errs}"));
            };
            // cel-parser reports 1-based lines and columns.
            let (line, col) = (e.pos.0.max(1), e.pos.1.max(1));
            let where_ = if expr.contains('\n') {
                format!("line {line}, column {col}")
            } else {
                format!("column {col}")
            };
            Error::Query(format!("query: {where_}: {}", e.msg))
        })?;
        let refs = check::check_expr(expr, &ast)?;
        let mut parts = Vec::new();
        conjuncts(ast, &mut parts);
        let fields = Fields::of(expr);
        Ok(Query {
            source: expr.to_string(),
            conjuncts: parts
                .into_iter()
                .map(|c| Conjunct::new(c, fields))
                .collect(),
            fields,
            refs,
        })
    }

    /// Checks the expression against a version's frame attributes (names and
    /// kinds of values): an attribute it reads that no frame has is an error
    /// naming the nearest one. Once per query, before any frame is judged.
    pub fn check(&self, schema: &check::Schema) -> Result<()> {
        self.refs.check(&self.source, schema)
    }

    /// The expression as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// One conjunct for one frame; `root` is a context with the standard functions.
    fn eval(&self, root: &Context, c: &Conjunct, f: &FrameRecord) -> Outcome {
        let mut ctx = root.new_inner_scope();
        bind(&mut ctx, f, &c.vars, self.fields);
        match Value::resolve(&c.expr, &ctx) {
            Ok(Value::Bool(true)) => Outcome::True,
            Ok(Value::Bool(false)) => Outcome::False,
            // Within a chain the interpreter takes any value by its truth.
            Ok(other) if self.conjuncts.len() > 1 => {
                if truthy(&other) {
                    Outcome::True
                } else {
                    Outcome::False
                }
            }
            Ok(other) => Outcome::NotBool(type_name(&other)),
            Err(ExecutionError::NoSuchKey(k)) => Outcome::Missing(k.to_string(), false),
            Err(ExecutionError::UndeclaredReference(n)) => Outcome::Missing(n.to_string(), true),
            Err(e) => Outcome::Failed(one_line(&e.to_string())),
        }
    }

    /// The frames of an index that match, in path order (evaluated in parallel).
    pub fn filter<'a>(&self, frames: &'a [FrameRecord]) -> Result<Vec<&'a FrameRecord>> {
        let keep = self.matches(frames)?;
        Ok(frames
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(f, _)| f)
            .collect())
    }

    /// Whether each frame matches (evaluated in parallel).
    pub fn matches(&self, frames: &[FrameRecord]) -> Result<Vec<bool>> {
        let parts = frames
            .par_chunks(4096)
            .map_init(
                || self.judge(),
                |judge, chunk| {
                    chunk
                        .iter()
                        .map(|f| judge(f as &dyn FrameAccess))
                        .collect::<Result<Vec<bool>>>()
                },
            )
            .collect::<Result<Vec<Vec<bool>>>>()?;
        Ok(parts.concat())
    }

    /// A function telling whether a frame matches, for one thread's run of
    /// frames: it holds one root context (which registers every standard
    /// function), set up once rather than per frame.
    pub fn judge(&self) -> impl FnMut(&dyn FrameAccess) -> Result<bool> + '_ {
        let root = Context::default();
        let mut key = Vec::new();
        // Each judge keeps its own copy of what it has looked up, and goes
        // to the shared memo (a lock) only for keys new to it: locking once
        // per frame made two threads wait on each other.
        let mut near: Vec<MemoMap> = vec![MemoMap::default(); self.conjuncts.len()];
        move |f| {
            for (c, near) in self.conjuncts.iter().zip(near.iter_mut()) {
                let out = match &c.memo {
                    Some((vars, memo)) => {
                        Conjunct::key(vars, f, &mut key);
                        match near.get(key.as_slice()) {
                            Some(o) => o.clone(),
                            None => {
                                let known = memo.lock().ok().and_then(|m| m.get(&key).cloned());
                                let o = match known {
                                    Some(o) => o,
                                    None => {
                                        let o = self.eval(&root, c, record(f)?);
                                        if let Ok(mut m) = memo.lock()
                                            && m.len() < MEMO_CAP
                                        {
                                            m.insert(key.clone(), o.clone());
                                        }
                                        o
                                    }
                                };
                                if near.len() < MEMO_CAP {
                                    near.insert(key.clone(), o.clone());
                                }
                                o
                            }
                        }
                    }
                    None => self.eval(&root, c, record(f)?),
                };
                match out {
                    Outcome::True => {}
                    Outcome::False => return Ok(false),
                    Outcome::Missing(name, variable) => {
                        let path = &record(f)?.path;
                        return Err(Error::Query(if variable {
                            format!(
                                "query: frame {path} has no attribute `{name}`; an optional attribute is read after testing it with has(attrs.{name})"
                            )
                        } else {
                            format!(
                                "query: no `{name}` on frame {path}; an optional attribute or key is read after testing it with has(), as in has(attrs.{name})"
                            )
                        }));
                    }
                    Outcome::NotBool(t) => {
                        return Err(Error::Query(format!(
                            "query: gives {t} for {}, not true or false",
                            record(f)?.path
                        )));
                    }
                    Outcome::Failed(m) => {
                        return Err(Error::Query(format!(
                            "query: {m} (frame {})",
                            record(f)?.path
                        )));
                    }
                }
            }
            Ok(true)
        }
    }
}

/// The whole frame, or an error when its stored bytes do not decode (the
/// caller then rebuilds the index).
fn record(f: &dyn FrameAccess) -> Result<&FrameRecord> {
    f.record()
        .ok_or_else(|| Error::Query("query: cached frame index is damaged".into()))
}

/// The interpreter's truth of a value (what `&&` tests).
fn truthy(v: &Value) -> bool {
    match v {
        Value::List(v) => !v.is_empty(),
        Value::Map(v) => !v.map.is_empty(),
        Value::Int(v) => *v != 0,
        Value::UInt(v) => *v != 0,
        Value::Float(v) => *v != 0.0,
        Value::String(v) => !v.is_empty(),
        Value::Bytes(v) => !v.is_empty(),
        Value::Bool(v) => *v,
        _ => false,
    }
}

thread_local! {
    /// Set while this thread runs the CEL parser (see [`parsing_cel`]).
    static PARSING_CEL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside the CEL parser, whose panics [`Query::compile`]
/// catches and turns into an error: a process's panic hook can stay quiet for them
/// (the CLI's does). Per thread, so no global state is touched while parsing.
pub fn parsing_cel() -> bool {
    PARSING_CEL.with(std::cell::Cell::get)
}

/// `Program::compile`, turning a panic of the parser into an error: cel-parser
/// 0.10 panics (instead of returning its errors) on some truncated inputs, such
/// as `size(x) >`. The process-wide panic hook is left alone (swapping it races
/// with other threads of an embedding program); see [`parsing_cel`].
fn compile_contained(
    expr: &str,
) -> Result<std::result::Result<cel_interpreter::IdedExpr, cel_interpreter::ParseErrors>> {
    PARSING_CEL.with(|p| p.set(true));
    let r = std::panic::catch_unwind(|| cel_parser::Parser::default().parse(expr));
    PARSING_CEL.with(|p| p.set(false));
    r.map_err(|_| {
        let end = expr.trim_end().chars().count() + 1;
        Error::Query(format!(
            "query: column {end}: incomplete or malformed expression"
        ))
    })
}

/// A message on one line (regex errors draw the pattern over several).
fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        Value::Int(_) | Value::UInt(_) | Value::Float(_) => "a number",
        Value::String(_) => "a string",
        Value::Null => "null",
        _ => "a value",
    }
}

fn s(v: &str) -> Value {
    Value::String(Arc::new(v.to_string()))
}

fn attr(v: &AttrValue) -> Value {
    match v {
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::Int(i) => Value::Int(*i),
        AttrValue::Float(x) => Value::Float(*x),
        AttrValue::Str(t) => s(t),
    }
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    let m: HashMap<Key, Value> = entries.into_iter().map(|(k, v)| (k.into(), v)).collect();
    Value::Map(Map { map: Arc::new(m) })
}

fn attr_map<'a>(a: impl IntoIterator<Item = (&'a String, &'a AttrValue)>) -> Value {
    let m: HashMap<Key, Value> = a
        .into_iter()
        .map(|(k, v)| (Key::from(k.as_str()), attr(v)))
        .collect();
    Value::Map(Map { map: Arc::new(m) })
}

fn bbox(b: &BBox) -> Value {
    map(vec![
        ("x", Value::Float(b.x)),
        ("y", Value::Float(b.y)),
        ("w", Value::Float(b.w)),
        ("h", Value::Float(b.h)),
    ])
}

fn object(o: &Object, fl: Fields) -> Value {
    let mut m = vec![("class", s(&o.class))];
    if fl.bbox {
        m.push(("box", o.bbox.as_ref().map_or(Value::Null, bbox)));
    }
    if fl.area {
        m.push(("area", Value::Float(o.bbox.map_or(0.0, |b| b.area()))));
    }
    if fl.id {
        m.push(("id", o.id.as_deref().map_or(Value::Null, s)));
    }
    if fl.attributes {
        m.push(("attributes", attr_map(&o.attributes)));
    }
    if fl.kind {
        m.push(("kind", s(o.kind())));
    }
    map(m)
}

fn prediction(p: &Prediction, fl: Fields) -> Value {
    let b = p.bbox;
    let mut m = vec![("class", s(&p.class))];
    if fl.bbox {
        m.push(("box", b.as_ref().map_or(Value::Null, bbox)));
    }
    if fl.area {
        m.push(("area", Value::Float(b.map_or(0.0, |b| b.area()))));
    }
    if fl.score {
        m.push(("score", p.score.map_or(Value::Null, Value::Float)));
    }
    map(m)
}

/// Binds the variables of a frame that the expression uses.
fn bind(ctx: &mut Context, f: &FrameRecord, used: &HashSet<String>, fields: Fields) {
    let uses = |n: &str| used.contains(n);
    for (k, v) in &f.attrs {
        if uses(k) && !RESERVED.contains(&k.as_str()) {
            ctx.add_variable_from_value(k.as_str(), attr(v));
        }
    }
    if uses("path") {
        ctx.add_variable_from_value("path", s(&f.path));
    }
    if uses("width") {
        let w = f.width.map_or(Value::Null, |w| Value::Int(w.into()));
        ctx.add_variable_from_value("width", w);
    }
    if uses("height") {
        let h = f.height.map_or(Value::Null, |h| Value::Int(h.into()));
        ctx.add_variable_from_value("height", h);
    }
    if uses("attrs") {
        ctx.add_variable_from_value("attrs", attr_map(&f.attrs));
    }
    if uses("objects") {
        let list = f.objects.iter().map(|o| object(o, fields)).collect();
        ctx.add_variable_from_value("objects", Value::List(Arc::new(list)));
    }
    if uses("predictions") {
        let list = f
            .predictions
            .iter()
            .map(|p| prediction(p, fields))
            .collect();
        ctx.add_variable_from_value("predictions", Value::List(Arc::new(list)));
    }
    if uses("labels") {
        let list = f.labels.iter().map(|(l, _)| s(l)).collect();
        ctx.add_variable_from_value("labels", Value::List(Arc::new(list)));
    }
}

/// The frames of an index selected by an optional expression (all without one).
pub fn select<'a>(index: &'a FrameIndex, expr: Option<&Query>) -> Result<Vec<&'a FrameRecord>> {
    match expr {
        Some(q) => {
            q.check(&index.attrs)?;
            q.filter(&index.frames)
        }
        None => Ok(index.frames.iter().collect()),
    }
}

/// Statistics of a set of frames (`dsv stats --where`), counted like `dsv stats`.
pub fn stats_of(frames: &[&FrameRecord]) -> crate::ops::stats::Stats {
    let mut st = crate::ops::stats::Stats::default();
    let mut label_files = std::collections::BTreeSet::new();
    for f in frames {
        st.frames += 1;
        if !f.labels.is_empty() {
            if f.objects.is_empty() {
                st.empty_label_frames += 1;
            } else {
                st.labelled_frames += 1;
            }
        }
        for (l, _) in &f.labels {
            label_files.insert(l.as_str());
        }
        for (k, v) in &f.attrs {
            *st.frame_attributes
                .entry(k.clone())
                .or_default()
                .entry(bucket(v))
                .or_default() += 1;
        }
        for o in &f.objects {
            st.objects += 1;
            *st.classes.entry(o.class.clone()).or_default() += 1;
            for (k, v) in &o.attributes {
                *st.attributes
                    .entry(k.clone())
                    .or_default()
                    .entry(bucket(v))
                    .or_default() += 1;
            }
        }
    }
    st.label_files = label_files.len() as u64;
    st
}

fn bucket(v: &AttrValue) -> String {
    match v {
        AttrValue::Float(_) => "number".into(),
        other => other.to_string(),
    }
}

/// Decodes the sidecar rows of a cache pack's group (for fuzzing and tests):
/// the row count, `None` if malformed. Never panics, whatever the bytes.
pub fn read_cached_sidecar_rows(b: &[u8]) -> Option<usize> {
    sidecar::decode_rows(b).map(|rows| rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Units;

    fn frame(path: &str, attrs: &[(&str, AttrValue)], classes: &[&str]) -> FrameRecord {
        FrameRecord {
            path: path.into(),
            id: crate::ObjectId([0; 32]),
            size: 0,
            width: Some(100),
            height: None,
            units: Units::Pixels,
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            objects: classes
                .iter()
                .map(|c| Object::new(*c, Some(BBox::from_corners(0.0, 0.0, 10.0, 5.0))))
                .collect(),
            predictions: vec![],
            labels: vec![],
        }
    }

    #[test]
    fn matches_attributes_objects_and_counts() {
        let frames = vec![
            frame(
                "a.jpg",
                &[("weather", AttrValue::Str("rain".into()))],
                &["cone", "car"],
            ),
            frame("b.jpg", &[], &["car", "car", "car", "car"]),
            frame("c.jpg", &[("weather", AttrValue::Str("sun".into()))], &[]),
        ];
        let paths = |e: &str| -> Vec<String> {
            Query::compile(e)
                .unwrap()
                .filter(&frames)
                .unwrap()
                .iter()
                .map(|f| f.path.clone())
                .collect()
        };
        assert_eq!(
            paths(
                r#"has(attrs.weather) && weather == "rain" && objects.exists(o, o.class == "cone")"#
            ),
            ["a.jpg"]
        );
        assert_eq!(
            paths(r#"has(attrs.weather) && attrs.weather == "sun""#),
            ["c.jpg"]
        );
        // Read without has(), an attribute b.jpg lacks is an error naming it.
        for e in [r#"weather == "rain""#, r#"attrs.weather == "sun""#] {
            let err = Query::compile(e).unwrap().filter(&frames).unwrap_err();
            let err = err.to_string();
            assert!(
                err.contains("b.jpg")
                    && err.contains("`weather`")
                    && err.contains("has(attrs.weather)"),
                "{err}"
            );
        }
        assert_eq!(
            paths(r#"objects.filter(o, o.class == "car").size() > 3"#),
            ["b.jpg"]
        );
        assert_eq!(
            paths("objects.exists(o, o.area == 50.0) && width == 100"),
            ["a.jpg", "b.jpg"]
        );
        assert_eq!(paths(r#"path.endsWith("c.jpg")"#), ["c.jpg"]);
        assert_eq!(paths("!has(attrs.weather)"), ["b.jpg"]);
    }

    #[test]
    fn syntax_error_names_the_column() {
        let e = Query::compile("objects.size() > ").unwrap_err().to_string();
        assert!(e.starts_with("query: column "), "{e}");
        for (bad, col) in [("path == 'a' &&& x", 15), ("a b", 3), ("path = 'x'", 6)] {
            let e = Query::compile(bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("query: column {col}: ")),
                "{bad}: {e}"
            );
        }
        let e = Query::compile("objects.exists(o, o.class ==)")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("query: column 30: "), "{e}");
    }

    #[test]
    fn a_truncated_expression_the_parser_panics_on_is_an_error_on_any_thread() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..20 {
                        let e = Query::compile("objects.size() >").unwrap_err().to_string();
                        assert!(e.starts_with("query: column 17: "), "{e}");
                        assert!(!parsing_cel(), "the flag is cleared after a caught panic");
                        Query::compile("objects.size() > 1").unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    /// The whole expression at once, as the interpreter runs it: the oracle
    /// the split, memoized evaluation must agree with.
    fn oracle(expr: &str, f: &FrameRecord) -> std::result::Result<bool, String> {
        let p = cel_interpreter::Program::compile(expr).unwrap();
        let mut ctx = Context::default();
        let all: HashSet<String> = p
            .references()
            .variables()
            .into_iter()
            .map(str::to_string)
            .collect();
        bind(&mut ctx, f, &all, Fields::of(expr));
        match p.execute(&ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(_) => Err("not bool".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn split_and_memoized_evaluation_agrees_with_the_interpreter() {
        let w = |v: &str| ("weather", AttrValue::Str(v.into()));
        let mut frames = Vec::new();
        for i in 0..60 {
            let weather = ["rain", "sun", "fog"][i % 3];
            let classes: &[&str] = match i % 6 {
                0 => &["cone"],
                1 => &["car", "cone"],
                2 => &[],
                3 => &["cone", "car"],
                4 => &["car", "cone", "cone"],
                _ => &["car", "car", "car", "car"],
            };
            let mut attrs = vec![w(weather), ("n", AttrValue::Int((i % 5) as i64))];
            if i % 7 == 0 {
                attrs.clear(); // no attributes at all
            }
            let mut f = frame(&format!("f{i:02}.jpg"), &attrs, classes);
            f.width = (i % 2 == 0).then_some(100);
            frames.push(f);
        }
        let exprs = [
            r#"weather == "rain" && objects.exists(o, o.class == "cone")"#,
            r#"objects.exists(o, o.class == "cone") && weather == "rain""#,
            r#"n > 2 && weather != "fog" && objects.size() > 1"#,
            r#"(n > 2 && weather == "sun") && (width == 100 && objects.size() == 0)"#,
            r#"weather == "rain" || n == 4"#,
            r#"objects && n"#,
            r#"n == 1 && n / 0 == 1"#,
            r#"n == 7 && n / 0 == 1"#,
            r#"attrs.n == 3 && has(attrs.weather)"#,
            r#"!has(attrs.weather) && path.startsWith("f")"#,
            r#"objects.size() > 1 && objects[0].class == "car""#,
            r#"weather == "fog" && objects.exists(o, o.area > 10.0)"#,
            r#"objects.filter(o, o.class == "car").size() > 3 || weather == "sun""#,
            // Memoized on the classes in any order, then in order.
            r#"objects.exists_one(o, o.class == "cone") && size(objects) == 2"#,
            r#"objects.all(o, o.class in ["car", "cone"]) && objects.exists(o, o.class != "car")"#,
            r#"objects.size() == 2 && objects[0].class == "cone""#,
            r#"objects.map(o, o.class)[1] == "car""#,
            r#"objects.exists(o, o.class == "cone") && objects.filter(o, o.class == "car")[0].class == "car""#,
        ];
        // Every frame, then only those with every attribute: reading an
        // attribute a frame lacks is an error both ways.
        let complete: Vec<FrameRecord> = frames
            .iter()
            .filter(|f| f.attrs.len() == 2)
            .cloned()
            .collect();
        for (frames, want_errors) in [(&frames, 12), (&complete, 2)] {
            let ix = FrameIndex {
                frames: frames.clone(),
                ..FrameIndex::default()
            };
            let bytes = codec::encode(&ix);
            let mut errors = 0;
            for e in exprs {
                let q = Query::compile(e).unwrap();
                let want: std::result::Result<Vec<&str>, String> = frames
                    .iter()
                    .map(|f| oracle(e, f).map(|k| k.then_some(f.path.as_str())))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map(|v| v.into_iter().flatten().collect());
                let got: Result<Vec<&str>> = q
                    .filter(frames)
                    .map(|v| v.iter().map(|f| f.path.as_str()).collect());
                let cached = codec::decode_filtered(&bytes, || q.judge())
                    .map(|ix| ix.expect("decodes").frames)
                    .map(|v| v.into_iter().map(|f| f.path).collect::<Vec<_>>());
                match want {
                    Ok(want) => {
                        assert_eq!(got.unwrap(), want, "{e}");
                        assert_eq!(cached.unwrap(), want, "{e}");
                    }
                    Err(_) => {
                        errors += 1;
                        assert!(got.is_err(), "{e}: expected an error");
                        assert!(cached.is_err(), "{e}: expected an error");
                    }
                }
            }
            // With every attribute present, only the division by zero and
            // the field of an empty list's missing first element fail.
            assert_eq!(errors, want_errors);
        }
    }

    #[test]
    fn only_expressions_blind_to_object_order_are_keyed_on_sorted_classes() {
        let free = |e: &str| {
            let q = Query::compile(e).unwrap();
            q.conjuncts.iter().all(|c| order_free(&c.expr))
        };
        for e in [
            r#"weather == "rain" && objects.exists(o, o.class == "green_cone")"#,
            r#"objects.all(o, o.class == "a" || !(o.class in ["b", "c"]))"#,
            r#"objects.exists_one(o, o.class != "a") && objects.size() > 2"#,
            r#"size(objects) == 3"#,
        ] {
            assert!(free(e), "{e}");
        }
        for e in [
            r#"objects[0].class == "a""#,
            r#"objects.map(o, o.class)[0] == "a""#,
            r#"objects.filter(o, o.class == "a").size() > 1"#,
            r#"objects.exists(o, o.class == weather)"#,
            r#"objects.exists(o, o.class.startsWith("a"))"#,
            r#"objects.exists(o, o.class == 1)"#,
            r#"objects == []"#,
        ] {
            assert!(!free(e), "{e}");
        }
    }

    #[test]
    fn non_boolean_result_is_an_error() {
        let frames = vec![frame("a.jpg", &[], &[])];
        let e = Query::compile("objects")
            .unwrap()
            .filter(&frames)
            .unwrap_err();
        assert!(e.to_string().contains("not true or false"), "{e}");
    }
}
