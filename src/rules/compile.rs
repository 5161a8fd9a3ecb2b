//! Step three: the checked tree becomes a tree of specialised closures.
//!
//! Conditions compile to predicates (`-> bool`) and everything else to value
//! functions (`-> Option<Value>`, `None` for missing). The common shapes get
//! their own closures with the constant baked in: `field op constant` reads one
//! slot and compares without touching a shared `Value` path, `and`/`or`
//! short-circuit over a flat list, `in [...]` of strings scans a prepared list.
//! Nothing here allocates for comparisons of scalars.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset};

use super::context::EvalError;

/// Errors travel boxed inside the closures so that results stay two words
/// wide and are returned in registers.
pub(crate) type Fallible<T> = Result<T, Box<EvalError>>;
use super::ast::{BinaryOp, Quantifier};
use super::checked::{Node, NodeKind, Step};
use super::functions;
use super::ops;
use crate::diag::Source;
use crate::value::{FieldRef, OwnedValue, Record, Value, cmp_int_float};

/// Per-evaluation state.
pub(crate) struct Frame<'r> {
    pub consts: &'r [OwnedValue],
    pub now: DateTime<FixedOffset>,
    pub locals: Vec<Value<'r>>,
    pub steps: u64,
    pub max_steps: u64,
}

pub(crate) type PredFn =
    Box<dyn for<'r> Fn(&'r dyn Record, &mut Frame<'r>) -> Fallible<bool> + Send + Sync>;
pub(crate) type ValFn = Box<
    dyn for<'r> Fn(&'r dyn Record, &mut Frame<'r>) -> Fallible<Option<Value<'r>>> + Send + Sync,
>;

/// Compiles nodes, collecting constants into a pool the frame hands back by reference.
pub(crate) struct Compiler {
    pub consts: Vec<OwnedValue>,
    /// Source texts, innermost inlined rule last, to name expressions in errors.
    sources: Vec<Arc<Source>>,
}

/// Read a top-level field; floats that are not finite are rejected.
#[inline]
fn read_field<'r>(r: &'r dyn Record, name: &str, slot: u32) -> Fallible<Option<Value<'r>>> {
    let v = r.field(FieldRef {
        name,
        slot: Some(slot),
    });
    if let Some(Value::Float(x)) = v
        && !x.is_finite()
    {
        return Err(Box::new(EvalError::NotFinite(name.to_string())));
    }
    Ok(v)
}

/// Follow one path step.
pub(crate) fn walk<'r>(v: Value<'r>, step: &Step) -> Option<Value<'r>> {
    match (v, step) {
        (Value::Object(o), Step::Field(name)) => o.field(FieldRef { name, slot: None }),
        (Value::OwnedObject(o), Step::Field(name)) => {
            o.get(name).map(|j| Value::from_json_owned(j.clone()))
        }
        (Value::List(l), Step::Index(i)) => l.get(*i),
        (Value::OwnedList(l), Step::Index(i)) => l.get(*i).cloned(),
        _ => None,
    }
}

fn present(v: Option<Value<'_>>) -> Option<Value<'_>> {
    match v {
        None | Some(Value::Null) => None,
        v => v,
    }
}

/// A constant prepared for the `field op constant` fast path.
enum FastConst {
    Int(i64),
    Float(f64),
    Str(Box<str>),
}

impl Compiler {
    pub fn new(source: Arc<Source>) -> Compiler {
        Compiler {
            consts: Vec::new(),
            sources: vec![source],
        }
    }

    fn describe(&self, node: &Node) -> String {
        self.sources
            .last()
            .and_then(|s| s.text.get(node.span.range()))
            .map_or_else(
                || "expression".to_string(),
                |t| t.split_whitespace().collect::<Vec<_>>().join(" "),
            )
    }

    fn konst(&mut self, v: &OwnedValue) -> usize {
        self.consts.push(v.clone());
        self.consts.len() - 1
    }

    /// Compile a condition.
    pub fn pred(&mut self, node: &Node) -> PredFn {
        match &node.kind {
            NodeKind::Const(Value::Bool(b)) => {
                let b = *b;
                Box::new(move |_, _| Ok(b))
            }
            NodeKind::Const(_) => Box::new(|_, _| Ok(false)),
            NodeKind::And(items) if items.len() == 2 => {
                let (a, b) = (self.pred(&items[0]), self.pred(&items[1]));
                Box::new(move |r, fr| Ok(a(r, fr)? && b(r, fr)?))
            }
            NodeKind::Or(items) if items.len() == 2 => {
                let (a, b) = (self.pred(&items[0]), self.pred(&items[1]));
                Box::new(move |r, fr| Ok(a(r, fr)? || b(r, fr)?))
            }
            NodeKind::And(items) => {
                let fs: Vec<PredFn> = items.iter().map(|n| self.pred(n)).collect();
                Box::new(move |r, fr| {
                    for f in &fs {
                        if !f(r, fr)? {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                })
            }
            NodeKind::Or(items) => {
                let fs: Vec<PredFn> = items.iter().map(|n| self.pred(n)).collect();
                Box::new(move |r, fr| {
                    for f in &fs {
                        if f(r, fr)? {
                            return Ok(true);
                        }
                    }
                    Ok(false)
                })
            }
            NodeKind::Not(inner) => {
                let f = self.pred(inner);
                Box::new(move |r, fr| Ok(!f(r, fr)?))
            }
            NodeKind::Compare { op, left, right } => self.compare(*op, left, right),
            NodeKind::Member { op, left, right } => self.member(*op, left, right),
            NodeKind::Matches { value, regex } => {
                let v = self.value(value);
                let regex = regex.clone();
                Box::new(move |r, fr| {
                    Ok(match v(r, fr)? {
                        Some(Value::Str(s)) => regex.is_match(&s),
                        _ => false,
                    })
                })
            }
            NodeKind::Between { value, low, high } => {
                let (v, lo, hi) = (self.value(value), self.value(low), self.value(high));
                Box::new(move |r, fr| {
                    let (Some(x), Some(a), Some(b)) =
                        (present(v(r, fr)?), present(lo(r, fr)?), present(hi(r, fr)?))
                    else {
                        return Ok(false);
                    };
                    Ok(ops::compare(&x, &a).is_some_and(|o| o.is_ge())
                        && ops::compare(&x, &b).is_some_and(|o| o.is_le()))
                })
            }
            NodeKind::IsNull { value, negated } => {
                let v = self.value(value);
                let negated = *negated;
                Box::new(move |r, fr| Ok(ops::is_nullish(&v(r, fr)?) != negated))
            }
            NodeKind::Quant {
                quantifier,
                index,
                list,
                predicate,
                ..
            } => {
                let list = self.value(list);
                let pred = self.pred(predicate);
                let (quantifier, index) = (*quantifier, *index);
                Box::new(move |r, fr| {
                    let Some(l) = list(r, fr)? else {
                        return Ok(false);
                    };
                    let n = match l.list_len() {
                        Some(n) => n,
                        None => return Ok(false),
                    };
                    fr.steps = fr.steps.saturating_add(n as u64);
                    if fr.steps > fr.max_steps {
                        return Err(Box::new(EvalError::CostExceeded(fr.max_steps)));
                    }
                    fr.locals.truncate(index);
                    for i in 0..n {
                        let el = match &l {
                            Value::List(items) => items.get(i),
                            Value::OwnedList(items) => items.get(i).cloned(),
                            _ => None,
                        };
                        fr.locals.push(el.unwrap_or(Value::Null));
                        let hit = pred(r, fr);
                        fr.locals.truncate(index);
                        match (quantifier, hit?) {
                            (Quantifier::Any, true) => return Ok(true),
                            (Quantifier::All, false) => return Ok(false),
                            _ => {}
                        }
                    }
                    Ok(quantifier == Quantifier::All)
                })
            }
            NodeKind::Rule { body, source, .. } => {
                self.sources.push(source.clone());
                let f = self.pred(body);
                self.sources.pop();
                f
            }
            _ => {
                let v = self.value(node);
                Box::new(move |r, fr| Ok(matches!(v(r, fr)?, Some(Value::Bool(true)))))
            }
        }
    }

    fn compare(&mut self, op: BinaryOp, left: &Node, right: &Node) -> PredFn {
        // field op constant, and constant op field
        if let Some(f) = self.fast_compare(op, left, right) {
            return f;
        }
        if let Some(f) = self.fast_compare(op.flipped(), right, left) {
            return f;
        }
        let (l, r_) = (self.value(left), self.value(right));
        Box::new(move |r, fr| {
            let (Some(a), Some(b)) = (present(l(r, fr)?), present(r_(r, fr)?)) else {
                return Ok(false);
            };
            Ok(ops::compare_op(op, &a, &b))
        })
    }

    fn fast_compare(&mut self, op: BinaryOp, field: &Node, konst: &Node) -> Option<PredFn> {
        let NodeKind::Field { slot, name, rest } = &field.kind else {
            return None;
        };
        if !rest.is_empty() {
            return None;
        }
        let NodeKind::Const(c) = &konst.kind else {
            return None;
        };
        let c = match c {
            Value::Int(i) => FastConst::Int(*i),
            Value::Float(x) => FastConst::Float(*x),
            Value::Str(s) => FastConst::Str(s.as_ref().into()),
            _ => return None,
        };
        let (slot, name): (u32, Box<str>) = (*slot, name.as_str().into());
        // one closure per operator: the comparison is baked in, not matched per call
        macro_rules! by_op {
            ($f:ident, $k:expr) => {
                match op {
                    BinaryOp::Eq => $f::<EQ>(name, slot, $k),
                    BinaryOp::Ne => $f::<NE>(name, slot, $k),
                    BinaryOp::Lt => $f::<LT>(name, slot, $k),
                    BinaryOp::Le => $f::<LE>(name, slot, $k),
                    BinaryOp::Gt => $f::<GT>(name, slot, $k),
                    BinaryOp::Ge => $f::<GE>(name, slot, $k),
                    _ => return None,
                }
            };
        }
        Some(match c {
            FastConst::Int(k) => by_op!(int_compare, k),
            FastConst::Float(k) => by_op!(float_compare, k),
            FastConst::Str(k) => by_op!(str_compare, k),
        })
    }

    fn member(&mut self, op: BinaryOp, left: &Node, right: &Node) -> PredFn {
        // field in [string constants]
        if let (NodeKind::Field { slot, name, rest }, NodeKind::Const(list)) =
            (&left.kind, &right.kind)
            && rest.is_empty()
            && matches!(op, BinaryOp::In | BinaryOp::NotIn)
        {
            let n = list.list_len().unwrap_or(0);
            let strings: Option<Vec<Box<str>>> = (0..n)
                .map(|i| match list.list_get(i) {
                    Some(Value::Str(s)) => Some(s.as_ref().into()),
                    _ => None,
                })
                .collect();
            if let Some(strings) = strings {
                let (slot, name) = (*slot, name.clone());
                let want = op == BinaryOp::In;
                return Box::new(move |r, _| {
                    Ok(match read_field(r, &name, slot)? {
                        Some(Value::Str(s)) => strings.iter().any(|x| **x == *s) == want,
                        None | Some(Value::Null) => false,
                        Some(_) => !want,
                    })
                });
            }
        }
        let (l, r_) = (self.value(left), self.value(right));
        Box::new(move |r, fr| {
            let (Some(a), Some(b)) = (present(l(r, fr)?), present(r_(r, fr)?)) else {
                return Ok(false);
            };
            Ok(match op {
                BinaryOp::In => ops::list_contains(&b, &a).unwrap_or(false),
                BinaryOp::NotIn => ops::list_contains(&b, &a).is_some_and(|x| !x),
                BinaryOp::Contains => ops::contains(&a, &b),
                BinaryOp::StartsWith => match (&a, &b) {
                    (Value::Str(x), Value::Str(y)) => x.starts_with(y.as_ref()),
                    _ => false,
                },
                BinaryOp::EndsWith => match (&a, &b) {
                    (Value::Str(x), Value::Str(y)) => x.ends_with(y.as_ref()),
                    _ => false,
                },
                _ => false,
            })
        })
    }

    /// Compile a value-producing expression.
    pub fn value(&mut self, node: &Node) -> ValFn {
        match &node.kind {
            NodeKind::Const(v) => {
                let i = self.konst(v);
                Box::new(move |_, fr| {
                    let consts = fr.consts;
                    Ok(consts.get(i).map(Value::reborrow))
                })
            }
            NodeKind::Field { slot, name, rest } => {
                let (slot, name, rest) = (*slot, name.clone(), rest.clone());
                if rest.is_empty() {
                    Box::new(move |r, _| read_field(r, &name, slot))
                } else {
                    Box::new(move |r, _| {
                        let mut cur = read_field(r, &name, slot)?;
                        for step in &rest {
                            cur = cur.and_then(|v| walk(v, step));
                        }
                        Ok(cur)
                    })
                }
            }
            NodeKind::Local { index, rest, .. } => {
                let (index, rest) = (*index, rest.clone());
                Box::new(move |_, fr| {
                    let mut cur = fr.locals.get(index).cloned();
                    for step in &rest {
                        cur = cur.and_then(|v| walk(v, step));
                    }
                    Ok(cur)
                })
            }
            NodeKind::Unbound => Box::new(|_, _| Ok(None)),
            NodeKind::Neg(inner) => {
                let f = self.value(inner);
                let what: Arc<str> = self.describe(node).into();
                Box::new(move |r, fr| match present(f(r, fr)?) {
                    Some(v) => Ok(ops::negate(&v, &what)?),
                    None => Ok(None),
                })
            }
            NodeKind::Arith { op, left, right } => {
                let (l, r_) = (self.value(left), self.value(right));
                let op = *op;
                let what: Arc<str> = self.describe(node).into();
                Box::new(move |r, fr| {
                    let (Some(a), Some(b)) = (present(l(r, fr)?), present(r_(r, fr)?)) else {
                        return Ok(None);
                    };
                    Ok(ops::arith(op, &a, &b, &what)?)
                })
            }
            NodeKind::Call { func, args } => {
                let fs: Vec<ValFn> = args.iter().map(|a| self.value(a)).collect();
                let func = func.clone();
                Box::new(move |r, fr| {
                    let mut vals = Vec::with_capacity(fs.len());
                    for f in &fs {
                        match present(f(r, fr)?) {
                            Some(v) => vals.push(v),
                            None if func.builtin.is_some() => return Ok(None),
                            None => vals.push(Value::Null),
                        }
                    }
                    Ok(functions::call(&func, &vals, fr.now)?)
                })
            }
            NodeKind::List(items) => {
                let fs: Vec<ValFn> = items.iter().map(|a| self.value(a)).collect();
                Box::new(move |r, fr| {
                    let mut vals: Vec<OwnedValue> = Vec::with_capacity(fs.len());
                    for f in &fs {
                        vals.push(f(r, fr)?.map_or(Value::Null, Value::into_owned));
                    }
                    Ok(Some(Value::OwnedList(vals.into())))
                })
            }
            NodeKind::Rule { body, source, .. } => {
                self.sources.push(source.clone());
                let f = self.value(body);
                self.sources.pop();
                f
            }
            // conditions as values
            _ => {
                let p = self.pred(node);
                Box::new(move |r, fr| Ok(Some(Value::Bool(p(r, fr)?))))
            }
        }
    }
}

const EQ: u8 = 0;
const NE: u8 = 1;
const LT: u8 = 2;
const LE: u8 = 3;
const GT: u8 = 4;
const GE: u8 = 5;

fn op_of(code: u8) -> BinaryOp {
    match code {
        EQ => BinaryOp::Eq,
        NE => BinaryOp::Ne,
        LT => BinaryOp::Lt,
        LE => BinaryOp::Le,
        GT => BinaryOp::Gt,
        _ => BinaryOp::Ge,
    }
}

#[inline(always)]
fn holds<const OP: u8>(o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match OP {
        EQ => o == Equal,
        NE => o != Equal,
        LT => o == Less,
        LE => o != Greater,
        GT => o == Greater,
        _ => o != Less,
    }
}

/// `field OP int`: ints compare directly, floats exactly, other types by the general rule.
fn int_compare<const OP: u8>(name: Box<str>, slot: u32, k: i64) -> PredFn {
    Box::new(move |r, _| {
        Ok(match read_field(r, &name, slot)? {
            Some(Value::Int(i)) => holds::<OP>(i.cmp(&k)),
            Some(Value::Float(x)) => cmp_int_float(k, x).is_some_and(|o| holds::<OP>(o.reverse())),
            None | Some(Value::Null) => false,
            Some(other) => ops::compare_op(op_of(OP), &other, &Value::Int(k)),
        })
    })
}

/// `field OP float`.
fn float_compare<const OP: u8>(name: Box<str>, slot: u32, k: f64) -> PredFn {
    Box::new(move |r, _| {
        Ok(match read_field(r, &name, slot)? {
            Some(Value::Float(x)) => x.partial_cmp(&k).is_some_and(holds::<OP>),
            Some(Value::Int(i)) => cmp_int_float(i, k).is_some_and(holds::<OP>),
            None | Some(Value::Null) => false,
            Some(other) => ops::compare_op(op_of(OP), &other, &Value::Float(k)),
        })
    })
}

/// `field OP "string"` (also enum symbols): `==` and `!=` compare bytes directly.
fn str_compare<const OP: u8>(name: Box<str>, slot: u32, k: Box<str>) -> PredFn {
    Box::new(move |r, _| {
        Ok(match read_field(r, &name, slot)? {
            Some(Value::Str(s)) => match OP {
                EQ => *s == *k,
                NE => *s != *k,
                _ => holds::<OP>(s.as_ref().cmp(&*k)),
            },
            None | Some(Value::Null) => false,
            Some(other) => ops::compare_op(op_of(OP), &other, &Value::str(&k)),
        })
    })
}
