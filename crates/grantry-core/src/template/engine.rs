//! The Liquid engine with a budget (docs/concepts.md §3.6): every
//! render may run at most `MAX_ITERATIONS` loop iterations in total, write at
//! most `MAX_OUTPUT` bytes, make no value larger than that, and take at most
//! `MAX_TIME`. The budget is checked while rendering, by Grantry's own `for`
//! and `capture` blocks and around every filter, so a template bomb ends in an
//! error instead of an allocation the process cannot survive.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use liquid_core::error::ResultLiquidExt;
use liquid_core::model::{KString, KStringRef, Object, Value, ValueView};
use liquid_core::parser::{BlockElement, TryMatchToken};
use liquid_core::runtime::{Interrupt, InterruptRegister, StackFrame};
use liquid_core::{
    BlockReflection, Expression, Filter, FilterReflection, Language, ParseBlock, ParseFilter, Renderable, Runtime,
    TagBlock, TagTokenIter, Template,
};

/// Loop iterations one render may run, over all its loops.
pub const MAX_ITERATIONS: u64 = 10_000;
/// Bytes one render may write, and the largest value it may build.
pub const MAX_OUTPUT: usize = 64 * 1024;
/// Wall-clock time one render may take.
pub const MAX_TIME: Duration = Duration::from_millis(50);

/// What is left of the budget of the render running on this thread. Liquid
/// renders synchronously, so a thread-local is exactly "this render".
struct Budget {
    iterations: u64,
    deadline: Instant,
    /// Set when the budget ran out: the render fails for that reason whatever
    /// error Liquid wraps around it.
    exceeded: Option<String>,
}

thread_local! {
    static BUDGET: RefCell<Option<Budget>> = const { RefCell::new(None) };
}

/// Runs `f` as one render with a fresh budget of `time` (at most `MAX_TIME`);
/// `Err` carries the reason the budget ran out.
pub(crate) fn with_budget<T>(time: Duration, f: impl FnOnce() -> T) -> Result<T, String> {
    let deadline = Instant::now() + time.min(MAX_TIME);
    BUDGET.with(|b| *b.borrow_mut() = Some(Budget { iterations: 0, deadline, exceeded: None }));
    let out = f();
    let exceeded = BUDGET.with(|b| b.borrow_mut().take().and_then(|b| b.exceeded));
    match exceeded {
        Some(reason) => Err(reason),
        None => Ok(out),
    }
}

fn over(reason: String) -> liquid_core::Error {
    BUDGET.with(|b| {
        if let Some(budget) = b.borrow_mut().as_mut() {
            budget.exceeded.get_or_insert(reason.clone());
        }
    });
    liquid_core::Error::with_msg(reason)
}

/// Charges `n` loop iterations and checks the clock.
fn charge(n: u64) -> liquid_core::Result<()> {
    let state = BUDGET.with(|b| {
        let mut b = b.borrow_mut();
        let budget = b.as_mut()?;
        budget.iterations = budget.iterations.saturating_add(n);
        Some((budget.iterations, budget.deadline))
    });
    match state {
        Some((used, _)) if used > MAX_ITERATIONS => {
            Err(over(format!("runs more than {MAX_ITERATIONS} loop iterations")))
        }
        Some((_, deadline)) if Instant::now() > deadline => {
            Err(over(format!("takes longer than {} ms to render", MAX_TIME.as_millis())))
        }
        _ => Ok(()),
    }
}

/// Roughly how many bytes a value holds, counted up to `limit`.
fn size(value: &dyn ValueView, limit: usize) -> usize {
    if let Some(array) = value.as_array() {
        let mut total = 0usize;
        for item in array.values() {
            total = total.saturating_add(size(item, limit) + 1);
            if total > limit {
                break;
            }
        }
        total
    } else if let Some(object) = value.as_object() {
        let mut total = 0usize;
        for (key, item) in object.iter() {
            total = total.saturating_add(key.len() + size(item, limit) + 1);
            if total > limit {
                break;
            }
        }
        total
    } else {
        value.to_kstr().len()
    }
}

fn check_value(value: &dyn ValueView) -> liquid_core::Result<()> {
    if size(value, MAX_OUTPUT) > MAX_OUTPUT {
        return Err(over(format!("builds a value larger than {} KiB", MAX_OUTPUT / 1024)));
    }
    charge(0)
}

/// A writer that refuses to grow past `MAX_OUTPUT`.
pub(crate) struct Capped(pub Vec<u8>);

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_OUTPUT {
            let _ = over(format!("writes more than {} KiB", MAX_OUTPUT / 1024));
            return Err(std::io::Error::other("output budget exceeded"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---- filters: every one checked ---------------------------------------------

/// A filter whose every result is checked against the budget.
#[derive(Clone)]
pub(crate) struct Guarded<F>(pub F);

impl<F: ParseFilter + Clone + 'static> ParseFilter for Guarded<F> {
    fn parse(&self, arguments: liquid_core::parser::FilterArguments) -> liquid_core::Result<Box<dyn Filter>> {
        Ok(Box::new(GuardedFilter(self.0.parse(arguments)?)))
    }
    fn reflection(&self) -> &dyn FilterReflection {
        self.0.reflection()
    }
}

#[derive(Debug)]
struct GuardedFilter(Box<dyn Filter>);

impl std::fmt::Display for GuardedFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Filter for GuardedFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> liquid_core::Result<Value> {
        charge(0)?;
        let out = self.0.evaluate(input, runtime)?;
        check_value(&out)?;
        Ok(out)
    }
}

// ---- for ----------------------------------------------------------------------

/// `{% for x in list|(a..b) [limit: n] [offset: n] [reversed] %}…{% else %}…{% endfor %}`,
/// charging every iteration. Ranges are counted, never built as a list.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ForBlock;

impl BlockReflection for ForBlock {
    fn start_tag(&self) -> &str {
        "for"
    }
    fn end_tag(&self) -> &str {
        "endfor"
    }
    fn description(&self) -> &str {
        "A loop, within the render budget."
    }
}

#[derive(Debug)]
enum Source {
    List(Expression),
    Range(Expression, Expression),
}

#[derive(Debug)]
struct For {
    var: KString,
    source: Source,
    body: Template,
    otherwise: Option<Template>,
    limit: Option<Expression>,
    offset: Option<Expression>,
    reversed: bool,
}

impl ParseBlock for ForBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut tokens: TagBlock<'_, '_>,
        options: &Language,
    ) -> liquid_core::Result<Box<dyn Renderable>> {
        let var = arguments.expect_next("Identifier expected.")?.expect_identifier().into_result()?;
        arguments.expect_next("\"in\" expected.")?.expect_str("in").into_result_custom_msg("\"in\" expected.")?;
        let source = match arguments.expect_next("Array or range expected.")?.expect_value() {
            TryMatchToken::Matches(list) => Source::List(list),
            TryMatchToken::Fails(token) => match token.expect_range() {
                TryMatchToken::Matches((start, stop)) => Source::Range(start, stop),
                TryMatchToken::Fails(token) => return Err(token.raise_error()),
            },
        };
        let (mut limit, mut offset, mut reversed) = (None, None, false);
        while let Some(token) = arguments.next() {
            match token.as_str() {
                "limit" => limit = Some(attribute(&mut arguments)?),
                "offset" => offset = Some(attribute(&mut arguments)?),
                "reversed" => reversed = true,
                _ => return Err(token.raise_custom_error("\"limit\", \"offset\" or \"reversed\" expected.")),
            }
        }
        arguments.expect_nothing()?;
        let mut body = Vec::new();
        let mut otherwise = None;
        while let Some(element) = tokens.next()? {
            match element {
                BlockElement::Tag(mut tag) if tag.name() == "else" => {
                    tag.tokens().expect_nothing()?;
                    otherwise = Some(Template::new(tokens.parse_all(options)?));
                    break;
                }
                BlockElement::Tag(tag) => body.push(tag.parse(&mut tokens, options)?),
                element => body.push(element.parse(&mut tokens, options)?),
            }
        }
        tokens.assert_empty();
        Ok(Box::new(For {
            var: KString::from_ref(var),
            source,
            body: Template::new(body),
            otherwise,
            limit,
            offset,
            reversed,
        }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

fn attribute(arguments: &mut TagTokenIter<'_>) -> liquid_core::Result<Expression> {
    arguments.expect_next("\":\" expected.")?.expect_str(":").into_result_custom_msg("\":\" expected.")?;
    arguments.expect_next("Value expected.")?.expect_value().into_result()
}

fn whole_number(expression: &Expression, runtime: &dyn Runtime, what: &str) -> liquid_core::Result<i64> {
    let value = expression.evaluate(runtime)?;
    value
        .as_scalar()
        .and_then(|s| s.to_integer())
        .ok_or_else(|| liquid_core::Error::with_msg(format!("{what} must be a whole number")))
}

impl For {
    fn window(&self, len: u64, runtime: &dyn Runtime) -> liquid_core::Result<(u64, u64)> {
        let offset = match &self.offset {
            Some(e) => whole_number(e, runtime, "offset")?.max(0) as u64,
            None => 0,
        };
        let start = offset.min(len);
        let count = match &self.limit {
            Some(e) => (whole_number(e, runtime, "limit")?.max(0) as u64).min(len - start),
            None => len - start,
        };
        Ok((start, count))
    }
}

impl Renderable for For {
    fn render_to(&self, writer: &mut dyn Write, runtime: &dyn Runtime) -> liquid_core::Result<()> {
        // Either a list that exists already, or a range counted from its first number.
        let (list, first, len) = match &self.source {
            Source::List(e) => {
                let value = e.evaluate(runtime)?;
                let items: Vec<Value> = if let Some(a) = value.as_array() {
                    a.values().map(ValueView::to_value).collect()
                } else if let Some(o) = value.as_object() {
                    o.iter().map(|(k, v)| Value::Array(vec![Value::scalar(k.into_owned()), v.to_value()])).collect()
                } else if value.is_nil() {
                    Vec::new()
                } else {
                    vec![value.to_value()]
                };
                let len = items.len() as u64;
                (Some(items), 0, len)
            }
            Source::Range(start, stop) => {
                let (start, stop) = (whole_number(start, runtime, "start")?, whole_number(stop, runtime, "end")?);
                let len =
                    if stop < start { 0 } else { (stop as i128 - start as i128 + 1).min(u64::MAX as i128) as u64 };
                (None, start, len)
            }
        };
        let (start, count) = self.window(len, runtime)?;
        if count == 0 {
            if let Some(t) = &self.otherwise {
                t.render_to(writer, runtime)?;
            }
            return Ok(());
        }
        // A loop that alone needs more than the whole budget fails before it starts.
        if count > MAX_ITERATIONS {
            return Err(over(format!("runs more than {MAX_ITERATIONS} loop iterations")));
        }
        for i in 0..count {
            charge(1)?;
            let position = if self.reversed { start + count - 1 - i } else { start + i };
            let item = match &list {
                Some(items) => items.get(position as usize).cloned().unwrap_or(Value::Nil),
                None => Value::scalar(first.saturating_add(position as i64)),
            };
            let mut forloop = Object::new();
            let (index, length) = (i as i64, count as i64);
            forloop.insert("length".into(), Value::scalar(length));
            forloop.insert("index0".into(), Value::scalar(index));
            forloop.insert("index".into(), Value::scalar(index + 1));
            forloop.insert("rindex0".into(), Value::scalar(length - index - 1));
            forloop.insert("rindex".into(), Value::scalar(length - index));
            forloop.insert("first".into(), Value::scalar(i == 0));
            forloop.insert("last".into(), Value::scalar(i + 1 == count));
            let forloop = Value::Object(forloop);
            let mut root = HashMap::<KStringRef<'_>, &dyn ValueView>::new();
            root.insert("forloop".into(), &forloop);
            root.insert(self.var.as_ref(), &item);
            let scope = StackFrame::new(runtime, &root);
            self.body.render_to(writer, &scope).context_key("index").value_with(|| (i + 1).to_string().into())?;
            let interrupt = scope.registers().get_mut::<InterruptRegister>().reset();
            if let Some(Interrupt::Break) = interrupt {
                break;
            }
        }
        Ok(())
    }
}

// ---- capture ------------------------------------------------------------------

/// `{% capture name %}…{% endcapture %}`, capturing at most `MAX_OUTPUT` bytes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CaptureBlock;

impl BlockReflection for CaptureBlock {
    fn start_tag(&self) -> &str {
        "capture"
    }
    fn end_tag(&self) -> &str {
        "endcapture"
    }
    fn description(&self) -> &str {
        "Renders its content into a variable, within the render budget."
    }
}

#[derive(Debug)]
struct Capture {
    name: KString,
    body: Template,
}

impl ParseBlock for CaptureBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut tokens: TagBlock<'_, '_>,
        options: &Language,
    ) -> liquid_core::Result<Box<dyn Renderable>> {
        let name = arguments.expect_next("Identifier expected")?.expect_identifier().into_result()?;
        arguments.expect_nothing()?;
        let body = Template::new(tokens.parse_all(options)?);
        tokens.assert_empty();
        Ok(Box::new(Capture { name: KString::from_ref(name), body }))
    }
    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

impl Renderable for Capture {
    fn render_to(&self, _writer: &mut dyn Write, runtime: &dyn Runtime) -> liquid_core::Result<()> {
        let mut captured = Capped(Vec::new());
        self.body.render_to(&mut captured, runtime)?;
        let text = String::from_utf8_lossy(&captured.0).into_owned();
        runtime.set_global(self.name.clone(), Value::scalar(text));
        Ok(())
    }
}

/// The one parser: standard Liquid with Grantry's budgeted `for` and `capture`,
/// every filter guarded, and no tags that reach outside the template
/// (`include`, `render`), only make HTML (`tablerow`), render outside the
/// budget (`ifchanged`) or hold text the template lexer cannot read for
/// sure (`raw`, `comment`).
pub(crate) fn build(extra: Vec<Box<dyn ParseFilter>>) -> Result<liquid::Parser, liquid::Error> {
    use liquid_lib::stdlib as std_;
    let mut builder = liquid::ParserBuilder::new()
        .tag(std_::AssignTag)
        .tag(std_::BreakTag)
        .tag(std_::ContinueTag)
        .tag(std_::CycleTag)
        .tag(std_::IncrementTag)
        .tag(std_::DecrementTag)
        .block(std_::IfBlock)
        .block(std_::UnlessBlock)
        .block(ForBlock)
        .block(CaptureBlock)
        .block(std_::CaseBlock);
    macro_rules! guarded {
        ($($name:ident),* $(,)?) => { $( builder = builder.filter(Guarded(std_::$name)); )* };
    }
    // Arithmetic, date, join, replace, slice and uniq are Grantry's own (`safe`).
    guarded!(
        Append,
        AtLeast,
        AtMost,
        Capitalize,
        Ceil,
        Compact,
        Concat,
        Default,
        Downcase,
        Escape,
        EscapeOnce,
        First,
        Floor,
        Last,
        Lstrip,
        Map,
        NewlineToBr,
        Prepend,
        Remove,
        RemoveFirst,
        ReplaceFirst,
        Reverse,
        Round,
        Rstrip,
        Size,
        Sort,
        SortNatural,
        Split,
        Strip,
        StripHtml,
        StripNewlines,
        Truncate,
        TruncateWords,
        Upcase,
        UrlDecode,
        UrlEncode,
        Where,
    );
    for filter in extra {
        builder = builder.filter(filter);
    }
    builder.build()
}

/// Boxes a filter of Grantry's own, guarded like the standard ones.
pub(crate) fn own<F: ParseFilter + Clone + 'static>(filter: F) -> Box<dyn ParseFilter> {
    Box::new(Guarded(filter))
}
