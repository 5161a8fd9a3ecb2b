//! Step three: the checked tree becomes a tree of specialised closures.
//!
//! Conditions compile to predicates (`-> bool`) and everything else to value
//! functions (`-> Option<Value>`, `None` for missing). A condition made only of
//! `and`, `or` and `not` over simple field tests (`field op constant`,
//! `field in [strings]`, `field is null`) runs as a `flat` jump list, whether
//! it is the whole program or one operand inside it; `and`/`or` short-circuit
//! over a flat list of operands. This module keeps only *how* nodes evaluate:
//! what each operator means is in `ops`. Nothing here allocates for
//! comparisons of scalars.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset};

use super::ast::{BinaryOp, Quantifier};
use super::checked::{Node, NodeKind, source_text};
use super::context::EvalError;
use super::flat::Flat;
use super::functions;
use super::ops;
use crate::diag::Source;
use crate::value::{OwnedValue, Record, Value};

/// Errors travel boxed inside the closures so that results stay two words
/// wide and are returned in registers.
pub(crate) type Fallible<T> = Result<T, Box<EvalError>>;

/// Per-evaluation state.
pub(crate) struct Frame<'r> {
    pub consts: &'r [OwnedValue],
    pub now: DateTime<FixedOffset>,
    pub locals: Vec<Value<'r>>,
    pub budget: ops::Budget,
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

fn boxed(e: EvalError) -> Box<EvalError> {
    Box::new(e)
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
            .map_or_else(String::new, |s| source_text(s, node.span))
    }

    fn konst(&mut self, v: &OwnedValue) -> usize {
        self.consts.push(v.clone());
        self.consts.len() - 1
    }

    /// Compile a condition.
    pub fn pred(&mut self, node: &Node) -> PredFn {
        if let Some(flat) = self.sources.last().and_then(|s| Flat::build(node, s)) {
            return Box::new(move |r, _| flat.run(r));
        }
        match &node.kind {
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
            NodeKind::Compare { op, left, right } => {
                self.binary_test(*op, left, right, ops::compare_op)
            }
            NodeKind::Member { op, left, right } => {
                self.binary_test(*op, left, right, ops::member_op)
            }
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
                    let (Some(x), Some(a), Some(b)) = (
                        ops::present(v(r, fr)?),
                        ops::present(lo(r, fr)?),
                        ops::present(hi(r, fr)?),
                    ) else {
                        return Ok(false);
                    };
                    Ok(ops::between(&x, &a, &b))
                })
            }
            NodeKind::IsNull { value, negated } => {
                let v = self.value(value);
                let negated = *negated;
                Box::new(move |r, fr| Ok(ops::is_nullish(&v(r, fr)?) != negated))
            }
            NodeKind::Has(path) => {
                let v = self.value(path);
                Box::new(move |r, fr| Ok(ops::has(&v(r, fr)?)))
            }
            NodeKind::If {
                cond,
                then,
                otherwise,
            } => {
                let (c, a, b) = (self.pred(cond), self.pred(then), self.pred(otherwise));
                Box::new(move |r, fr| if c(r, fr)? { a(r, fr) } else { b(r, fr) })
            }
            NodeKind::Quant {
                quantifier: quantifier @ (Quantifier::Any | Quantifier::All),
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
                    let Some(n) = l.list_len() else {
                        return Ok(false);
                    };
                    fr.budget.charge(n).map_err(boxed)?;
                    fr.locals.truncate(index);
                    for i in 0..n {
                        fr.locals.push(ops::element(&l, i));
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
                let what: Arc<str> = self.describe(node).into();
                Box::new(move |r, fr| Ok(ops::truth(&v(r, fr)?, || what.to_string())?))
            }
        }
    }

    /// A binary test: false when either side is missing or null, else `test`.
    fn binary_test(
        &mut self,
        op: BinaryOp,
        left: &Node,
        right: &Node,
        test: fn(BinaryOp, &Value<'_>, &Value<'_>) -> bool,
    ) -> PredFn {
        let (l, r_) = (self.value(left), self.value(right));
        Box::new(move |r, fr| {
            let (Some(a), Some(b)) = (ops::present(l(r, fr)?), ops::present(r_(r, fr)?)) else {
                return Ok(false);
            };
            Ok(test(op, &a, &b))
        })
    }

    /// A comprehension (`count`, `map`, `sum`, ...): each element with its
    /// body's result fed to `ops::Fold`.
    fn comprehension(
        &mut self,
        node: &Node,
        quantifier: Quantifier,
        index: usize,
        list: &Node,
        body: &Node,
    ) -> ValFn {
        enum BodyFn {
            Holds(PredFn),
            Value(ValFn),
        }
        let list = self.value(list);
        let body = if quantifier.takes_predicate() {
            BodyFn::Holds(self.pred(body))
        } else {
            BodyFn::Value(self.value(body))
        };
        let what: Arc<str> = self.describe(node).into();
        Box::new(move |r, fr| {
            let Some(n) = list(r, fr)?.and_then(|l| l.list_len().map(|n| (l, n))) else {
                return Ok(ops::over_nothing(quantifier));
            };
            let (l, n) = n;
            fr.budget.charge(n).map_err(boxed)?;
            fr.locals.truncate(index);
            let mut fold = ops::Fold::new(quantifier);
            for i in 0..n {
                let element = ops::element(&l, i);
                fr.locals.push(element.clone());
                let result = match &body {
                    BodyFn::Holds(p) => p(r, fr).map(ops::Body::Holds),
                    BodyFn::Value(v) => v(r, fr).map(ops::Body::Value),
                };
                fr.locals.truncate(index);
                if !fold.push(element, result?, &what)? {
                    break;
                }
            }
            Ok(fold.finish())
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
                    Box::new(move |r, _| ops::read_field(r, &name, slot).map_err(boxed))
                } else {
                    Box::new(move |r, _| {
                        let head = ops::read_field(r, &name, slot).map_err(boxed)?;
                        Ok(ops::walk_path(head, &rest))
                    })
                }
            }
            NodeKind::Local { index, rest, .. } => {
                let (index, rest) = (*index, rest.clone());
                Box::new(move |_, fr| Ok(ops::walk_path(fr.locals.get(index).cloned(), &rest)))
            }
            NodeKind::Param { .. } => Box::new(|_, _| Ok(None)),
            NodeKind::Path { base, rest } => {
                let (f, rest) = (self.value(base), rest.clone());
                Box::new(move |r, fr| Ok(ops::walk_path(f(r, fr)?, &rest)))
            }
            NodeKind::Index { base, index } => {
                let (b, i) = (self.value(base), self.value(index));
                let what: Arc<str> = self.describe(node).into();
                Box::new(move |r, fr| {
                    let base = b(r, fr)?;
                    Ok(ops::index(base, i(r, fr)?, &what)?)
                })
            }
            NodeKind::Coerce(inner) => {
                let (f, ty) = (self.value(inner), node.ty.clone());
                Box::new(move |r, fr| Ok(f(r, fr)?.map(|v| ops::coerce(v, &ty))))
            }
            NodeKind::Neg(inner) => {
                let f = self.value(inner);
                let what: Arc<str> = self.describe(node).into();
                Box::new(move |r, fr| match ops::present(f(r, fr)?) {
                    Some(v) => Ok(ops::negate(&v, &what)?),
                    None => Ok(None),
                })
            }
            NodeKind::Arith { op, left, right } => {
                let (l, r_) = (self.value(left), self.value(right));
                let op = *op;
                let what: Arc<str> = self.describe(node).into();
                Box::new(move |r, fr| {
                    let (Some(a), Some(b)) = (ops::present(l(r, fr)?), ops::present(r_(r, fr)?))
                    else {
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
                        vals.push(f(r, fr)?);
                    }
                    match ops::call_args(&func, vals) {
                        Some(args) => Ok(functions::call(&func, &args, fr.now, &mut fr.budget)?),
                        None => Ok(None),
                    }
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
            NodeKind::Quant {
                quantifier,
                index,
                list,
                predicate,
                ..
            } if *quantifier != Quantifier::Any && *quantifier != Quantifier::All => {
                self.comprehension(node, *quantifier, *index, list, predicate)
            }
            NodeKind::If {
                cond,
                then,
                otherwise,
            } => {
                let (c, a, b) = (self.pred(cond), self.value(then), self.value(otherwise));
                Box::new(move |r, fr| if c(r, fr)? { a(r, fr) } else { b(r, fr) })
            }
            NodeKind::Coalesce { value, fallback } => {
                let (a, b) = (self.value(value), self.value(fallback));
                Box::new(move |r, fr| {
                    let v = a(r, fr)?;
                    ops::coalesce(v, || b(r, fr))
                })
            }
            NodeKind::Object(keys, items) => {
                let keys = keys.clone();
                let fs: Vec<ValFn> = items.iter().map(|a| self.value(a)).collect();
                Box::new(move |r, fr| {
                    let mut vals = Vec::with_capacity(fs.len());
                    for f in &fs {
                        vals.push(f(r, fr)?);
                    }
                    Ok(Some(ops::object_of(keys.iter().cloned().zip(vals))))
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
