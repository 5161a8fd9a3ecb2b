//! Every limit the rules engine puts on its input, in one place (the table in
//! `docs/language.md`, "Limits"). Nothing a user writes can make the engine
//! panic, recurse without bound or run without bound; these numbers are how.

/// Largest source text accepted, in bytes (E007).
pub const MAX_SOURCE_BYTES: usize = 1 << 20;

/// Deepest nesting of parentheses, brackets, calls and prefix operators accepted (E008).
pub const MAX_DEPTH: usize = 64;

/// Deepest syntax tree accepted: chains such as `a or b or c` nest as well
/// (left-associatively), and later phases walk the tree recursively (E008).
pub(crate) const MAX_TREE_DEPTH: usize = 4 * MAX_DEPTH;

/// Most nodes one expression may expand to once rule references are inlined (E109).
pub(crate) const MAX_NODES: usize = 20_000;

/// Deepest checked tree once rule references are inlined (E109): every later
/// phase (compiling, evaluating, explaining) walks it recursively.
pub(crate) const MAX_CHECKED_DEPTH: usize = 1_024;

/// Most rules checked inside one another while a rule file is checked (E109);
/// rules are checked in dependency order, so only cycles of bare words come near it.
pub(crate) const MAX_RULE_NESTING: usize = 64;

/// Largest compiled regex, in bytes of the regex crate's program (E108).
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Longest flat program (`flat.rs`); longer conditions use the closure tree.
pub(crate) const MAX_FLAT_TESTS: usize = 4096;

/// Longest string a string function builds (`replace`, `pad_start`, `join`), in bytes.
pub(crate) const MAX_BUILT_STRING: usize = 16 << 20;

/// Default evaluation step budget: list elements visited by quantifiers,
/// comprehensions and list functions (`ops::Budget`) per evaluation.
pub const DEFAULT_MAX_STEPS: u64 = 1_000_000;
