//! The fastest path: conditions made only of `and`, `or` and `not` over simple
//! field tests compile to a flat list of tests with jump targets.
//!
//! `tier == premium or (total >= 100 and days <= 30)` becomes three tests; each
//! says where to go when it holds and when it does not, and the loop ends on a
//! verdict. Short-circuiting falls out of the jumps, `not` swaps the targets,
//! `if c then a else b` sends `c`'s two exits to `a` and `b`, `field ?? b` is
//! a null test that goes to `b` or to the field, and evaluation needs no
//! frame, no closure calls and no allocation. Anything else (arithmetic,
//! paths, functions, quantifiers, collections) falls back to the closure tree:
//! `Flat::build` gives up and `compile` builds closures for that part.

use super::ast::BinaryOp;
use super::checked::{Node, NodeKind, source_text};
use super::compile::Fallible;
use super::ops;
use crate::diag::Source;
use crate::value::{Record, Value, cmp_int_float};

/// Jump target: the condition holds.
const TRUE: u32 = u32::MAX;
/// Jump target: the condition does not hold.
const FALSE: u32 = u32::MAX - 1;
use super::limits::MAX_FLAT_TESTS as MAX_TESTS;

/// A compiled flat condition.
pub(crate) struct Flat {
    tests: Vec<Instr>,
    entry: u32,
}

struct Instr {
    test: Test,
    on_true: u32,
    on_false: u32,
}

struct FieldAt {
    name: Box<str>,
    slot: u32,
}

enum Test {
    Int {
        field: FieldAt,
        op: BinaryOp,
        k: i64,
    },
    Float {
        field: FieldAt,
        op: BinaryOp,
        k: f64,
    },
    Str {
        field: FieldAt,
        op: BinaryOp,
        k: Box<str>,
    },
    StrIn {
        field: FieldAt,
        list: Box<[Box<str>]>,
        want: bool,
    },
    IsNull {
        field: FieldAt,
        negated: bool,
    },
    Has {
        field: FieldAt,
    },
    Truthy {
        field: FieldAt,
        /// The field as written, to name it in an error.
        what: Box<str>,
    },
    Const(bool),
}

impl Flat {
    /// A flat program for `node`, when every part of it fits.
    pub fn build(node: &Node, source: &Source) -> Option<Flat> {
        let mut tests = Vec::new();
        let entry = emit(node, TRUE, FALSE, &mut tests, source)?;
        Some(Flat { tests, entry })
    }

    /// Evaluate against a record. Generic, so that a concrete record type's
    /// `field` is inlined (with `R = dyn Record` it is one dynamic call per test).
    #[inline]
    pub fn run<R: Record + ?Sized>(&self, r: &R) -> Fallible<bool> {
        let mut pc = self.entry;
        loop {
            let Some(ins) = self.tests.get(pc as usize) else {
                return Ok(false);
            };
            let next = if test(&ins.test, r)? {
                ins.on_true
            } else {
                ins.on_false
            };
            if next >= FALSE {
                return Ok(next == TRUE);
            }
            pc = next;
        }
    }
}

fn push(tests: &mut Vec<Instr>, test: Test, on_true: u32, on_false: u32) -> Option<u32> {
    if tests.len() >= MAX_TESTS {
        return None;
    }
    tests.push(Instr {
        test,
        on_true,
        on_false,
    });
    u32::try_from(tests.len() - 1).ok()
}

/// Emit `node` so that it jumps to `t` when it holds and `f` when not; returns its entry.
/// Children are emitted last-first, so every target is known when a test is written.
/// `source` holds the text of `node` (the rule's file inside an inlined rule).
fn emit(node: &Node, t: u32, f: u32, tests: &mut Vec<Instr>, source: &Source) -> Option<u32> {
    match &node.kind {
        NodeKind::And(items) => {
            let mut next = t;
            for item in items.iter().rev() {
                next = emit(item, next, f, tests, source)?;
            }
            Some(next)
        }
        NodeKind::Or(items) => {
            let mut next = f;
            for item in items.iter().rev() {
                next = emit(item, t, next, tests, source)?;
            }
            Some(next)
        }
        NodeKind::Not(inner) => emit(inner, f, t, tests, source),
        NodeKind::Rule { body, source, .. } => emit(body, t, f, tests, source),
        NodeKind::Const(Value::Bool(b)) => push(tests, Test::Const(*b), t, f),
        NodeKind::Const(Value::Null) => push(tests, Test::Const(false), t, f),
        NodeKind::Compare { op, left, right } => {
            let test = compare_test(*op, left, right)
                .or_else(|| compare_test(op.flipped(), right, left))?;
            push(tests, test, t, f)
        }
        NodeKind::Member { op, left, right } if matches!(op, BinaryOp::In | BinaryOp::NotIn) => {
            let field = simple_field(left)?;
            let NodeKind::Const(list) = &right.kind else {
                return None;
            };
            let n = list.list_len()?;
            let strings: Option<Vec<Box<str>>> = (0..n)
                .map(|i| match list.list_get(i) {
                    Some(Value::Str(s)) => Some(s.as_ref().into()),
                    _ => None,
                })
                .collect();
            let test = Test::StrIn {
                field,
                list: strings?.into(),
                want: *op == BinaryOp::In,
            };
            push(tests, test, t, f)
        }
        NodeKind::IsNull { value, negated } => {
            let test = Test::IsNull {
                field: simple_field(value)?,
                negated: *negated,
            };
            push(tests, test, t, f)
        }
        NodeKind::Has(path) => {
            let test = Test::Has {
                field: simple_field(path)?,
            };
            push(tests, test, t, f)
        }
        NodeKind::If {
            cond,
            then,
            otherwise,
        } => {
            let otherwise = emit(otherwise, t, f, tests, source)?;
            let then = emit(then, t, f, tests, source)?;
            emit(cond, then, otherwise, tests, source)
        }
        // `field ?? b`: b when the field is missing or null, else the field's truth
        NodeKind::Coalesce { value, fallback } => {
            // named as the whole `x ?? b`, as the closures and explain name it
            let truthy = Test::Truthy {
                field: simple_field(value)?,
                what: source_text(source, node.span).into(),
            };
            let present = push(tests, truthy, t, f)?;
            let fallback = emit(fallback, t, f, tests, source)?;
            let is_null = Test::IsNull {
                field: simple_field(value)?,
                negated: false,
            };
            push(tests, is_null, fallback, present)
        }
        NodeKind::Field { .. } => {
            let test = Test::Truthy {
                field: simple_field(node)?,
                what: source_text(source, node.span).into(),
            };
            push(tests, test, t, f)
        }
        _ => None,
    }
}

fn simple_field(node: &Node) -> Option<FieldAt> {
    match &node.kind {
        NodeKind::Field { slot, name, rest } if rest.is_empty() => Some(FieldAt {
            name: name.as_str().into(),
            slot: *slot,
        }),
        _ => None,
    }
}

fn compare_test(op: BinaryOp, field: &Node, konst: &Node) -> Option<Test> {
    let field = simple_field(field)?;
    let NodeKind::Const(c) = &konst.kind else {
        return None;
    };
    Some(match c {
        Value::Int(k) => Test::Int { field, op, k: *k },
        Value::Float(k) => Test::Float { field, op, k: *k },
        Value::Str(k) => Test::Str {
            field,
            op,
            k: k.as_ref().into(),
        },
        _ => return None,
    })
}

/// Read a test's field (a float that is not finite is an error, as on every path).
#[inline(always)]
fn read<'r, R: Record + ?Sized>(r: &'r R, field: &FieldAt) -> Fallible<Option<Value<'r>>> {
    ops::read_field(r, &field.name, field.slot).map_err(Box::new)
}

/// One test, with the semantics of `ops` (missing or null makes a comparison false).
#[inline(always)]
fn test<R: Record + ?Sized>(test: &Test, r: &R) -> Fallible<bool> {
    Ok(match test {
        Test::Int { field, op, k } => match read(r, field)? {
            Some(Value::Int(i)) => ops::ordering_holds(*op, i.cmp(k)),
            Some(Value::Float(x)) => {
                cmp_int_float(*k, x).is_some_and(|o| ops::ordering_holds(*op, o.reverse()))
            }
            None | Some(Value::Null) => false,
            Some(other) => ops::compare_op(*op, &other, &Value::Int(*k)),
        },
        Test::Float { field, op, k } => match read(r, field)? {
            Some(Value::Float(x)) => x
                .partial_cmp(k)
                .is_some_and(|o| ops::ordering_holds(*op, o)),
            Some(Value::Int(i)) => {
                cmp_int_float(i, *k).is_some_and(|o| ops::ordering_holds(*op, o))
            }
            None | Some(Value::Null) => false,
            Some(other) => ops::compare_op(*op, &other, &Value::Float(*k)),
        },
        Test::Str { field, op, k } => match read(r, field)? {
            Some(Value::Str(s)) => match op {
                BinaryOp::Eq => *s == **k,
                BinaryOp::Ne => *s != **k,
                _ => ops::ordering_holds(*op, s.as_ref().cmp(&**k)),
            },
            None | Some(Value::Null) => false,
            Some(other) => ops::compare_op(*op, &other, &Value::str(k)),
        },
        Test::StrIn { field, list, want } => match read(r, field)? {
            Some(Value::Str(s)) => list.iter().any(|x| **x == *s) == *want,
            None | Some(Value::Null) => false,
            Some(_) => !*want,
        },
        Test::IsNull { field, negated } => ops::is_nullish(&read(r, field)?) != *negated,
        Test::Has { field } => ops::has(&read(r, field)?),
        Test::Truthy { field, what } => {
            ops::truth(&read(r, field)?, || what.to_string()).map_err(Box::new)?
        }
        Test::Const(b) => *b,
    })
}
