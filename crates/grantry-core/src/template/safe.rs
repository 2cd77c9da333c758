//! Grantry's own versions of standard Liquid filters that, as the standard
//! library writes them, can panic (integer overflow, `i64::MIN / -1`) or do
//! unbounded work inside one call (a huge `date` width, quadratic `uniq`,
//! `replace` and `join` building gigabytes): the budget can only look at a
//! result once a filter returns, so these check before they work.

use liquid_core::model::{KStringCow, ValueView};
use liquid_core::{
    Display_filter, Expression, Filter, FilterParameters, FilterReflection, FromFilterParameters, ParseFilter, Result,
    Runtime, Value,
};

use super::MAX_OUTPUT;

fn fail(message: &str) -> liquid_core::Error {
    liquid_core::Error::with_msg(message.to_owned())
}

/// Fails before allocating a result that would be over the budget.
fn within_budget(projected: usize) -> Result<()> {
    if projected > MAX_OUTPUT {
        return Err(fail("the result would be larger than the render budget"));
    }
    Ok(())
}

#[derive(Debug, FilterParameters)]
struct OperandArgs {
    #[parameter(description = "The other number.")]
    operand: Expression,
}

/// The integer and float forms of a binary arithmetic filter.
type Ops = (fn(i64, i64) -> Option<i64>, fn(f64, f64) -> f64);

fn arithmetic(input: &dyn ValueView, operand: &dyn ValueView, (int, float): Ops, divides: bool) -> Result<Value> {
    let input = input.as_scalar().ok_or_else(|| fail("a number is expected"))?;
    let operand = operand.as_scalar().ok_or_else(|| fail("a number is expected as the operand"))?;
    if divides && (operand.to_integer() == Some(0) || operand.to_float() == Some(0.0)) {
        return Err(fail("cannot divide by zero"));
    }
    match (input.to_integer(), operand.to_integer()) {
        (Some(i), Some(o)) => int(i, o).map(Value::scalar).ok_or_else(|| fail("the result is out of range")),
        _ => match (input.to_float(), operand.to_float()) {
            (Some(i), Some(o)) => Ok(Value::scalar(float(i, o))),
            _ => Err(fail("a number is expected")),
        },
    }
}

/// `plus`, `minus`, `times`, `divided_by` and `modulo`, with checked integers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arithmetic {
    Plus,
    Minus,
    Times,
    DividedBy,
    Modulo,
}

impl Arithmetic {
    pub(crate) const ALL: [Arithmetic; 5] =
        [Arithmetic::Plus, Arithmetic::Minus, Arithmetic::Times, Arithmetic::DividedBy, Arithmetic::Modulo];

    fn ops(self) -> Ops {
        match self {
            Arithmetic::Plus => (i64::checked_add, |a, b| a + b),
            Arithmetic::Minus => (i64::checked_sub, |a, b| a - b),
            Arithmetic::Times => (i64::checked_mul, |a, b| a * b),
            Arithmetic::DividedBy => (i64::checked_div, |a, b| a / b),
            Arithmetic::Modulo => (i64::checked_rem, |a, b| a % b),
        }
    }

    fn divides(self) -> bool {
        matches!(self, Arithmetic::DividedBy | Arithmetic::Modulo)
    }
}

impl FilterReflection for Arithmetic {
    fn name(&self) -> &str {
        match self {
            Arithmetic::Plus => "plus",
            Arithmetic::Minus => "minus",
            Arithmetic::Times => "times",
            Arithmetic::DividedBy => "divided_by",
            Arithmetic::Modulo => "modulo",
        }
    }
    fn description(&self) -> &str {
        "Arithmetic on whole numbers (an overflow is an error) or decimals."
    }
    fn positional_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        <OperandArgs as liquid_core::parser::FilterParametersReflection>::positional_parameters()
    }
    fn keyword_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        <OperandArgs as liquid_core::parser::FilterParametersReflection>::keyword_parameters()
    }
}

impl ParseFilter for Arithmetic {
    fn parse(&self, arguments: liquid_core::parser::FilterArguments) -> Result<Box<dyn Filter>> {
        Ok(Box::new(ArithmeticFilter { op: *self, args: OperandArgs::from_args(arguments)? }))
    }
    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

#[derive(Debug)]
struct ArithmeticFilter {
    op: Arithmetic,
    args: OperandArgs,
}

impl std::fmt::Display for ArithmeticFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.op.name(), self.args)
    }
}

impl Filter for ArithmeticFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let args = self.args.evaluate(runtime)?;
        arithmetic(input, &args.operand, self.op.ops(), self.op.divides())
    }
}

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(name = "abs", description = "The absolute value of a number.", parsed(AbsFilter))]
pub(crate) struct Abs;

#[derive(Debug, Default, Display_filter)]
#[name = "abs"]
struct AbsFilter;

impl Filter for AbsFilter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> Result<Value> {
        let input = input.as_scalar().ok_or_else(|| fail("a number is expected"))?;
        match (input.to_integer(), input.to_float()) {
            (Some(i), _) => i.checked_abs().map(Value::scalar).ok_or_else(|| fail("the result is out of range")),
            (None, Some(f)) => Ok(Value::scalar(f.abs())),
            _ => Err(fail("a number is expected")),
        }
    }
}

#[derive(Debug, FilterParameters)]
struct DateArgs {
    #[parameter(description = "The strftime format.", arg_type = "str")]
    format: Expression,
}

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(
    name = "date",
    description = "Formats a date with strftime (widths up to 64).",
    parameters(DateArgs),
    parsed(DateFilter)
)]
pub(crate) struct Date;

#[derive(Debug, FromFilterParameters, Display_filter)]
#[name = "date"]
struct DateFilter {
    #[parameters]
    args: DateArgs,
}

/// The widest field a date format may ask for (`%64Y`).
const MAX_DATE_WIDTH: u64 = 64;

fn date_format_ok(format: &str) -> bool {
    let bytes = format.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            i += 1;
            while i < bytes.len() && matches!(bytes[i], b'-' | b'_' | b'0' | b'^' | b'#' | b':') {
                i += 1;
            }
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i > start && (i - start > 2 || format[start..i].parse::<u64>().map_or(true, |w| w > MAX_DATE_WIDTH)) {
                return false;
            }
        }
        i += 1;
    }
    format.len() <= 1024
}

impl Filter for DateFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let args = self.args.evaluate(runtime)?;
        let format = args.format.as_str();
        if !date_format_ok(format) {
            return Err(fail("the date format asks for a field wider than 64 or is longer than 1024 bytes"));
        }
        match input.as_scalar().and_then(|s| s.to_date_time()) {
            Some(date) if !format.is_empty() => {
                date.format(format).map(Value::scalar).map_err(|_| fail("the date format is not valid"))
            }
            _ => Ok(input.to_value()),
        }
    }
}

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(name = "uniq", description = "Removes repeated items of a list, keeping the first.", parsed(UniqFilter))]
pub(crate) struct Uniq;

#[derive(Debug, Default, Display_filter)]
#[name = "uniq"]
struct UniqFilter;

impl Filter for UniqFilter {
    fn evaluate(&self, input: &dyn ValueView, _runtime: &dyn Runtime) -> Result<Value> {
        let list = input.as_array().ok_or_else(|| fail("uniq: a list is expected"))?;
        let mut seen = std::collections::HashSet::new();
        let kept = list
            .values()
            .filter(|v| seen.insert((v.type_name(), v.to_kstr().into_owned())))
            .map(ValueView::to_value)
            .collect();
        Ok(Value::Array(kept))
    }
}

#[derive(Debug, FilterParameters)]
struct SliceArgs {
    #[parameter(description = "Where the slice starts; negative counts from the end.", arg_type = "integer")]
    offset: Expression,
    #[parameter(description = "How many items or characters (1 when left out).", arg_type = "integer")]
    length: Option<Expression>,
}

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(name = "slice", description = "A part of a string or a list.", parameters(SliceArgs), parsed(SliceFilter))]
pub(crate) struct Slice;

#[derive(Debug, FromFilterParameters, Display_filter)]
#[name = "slice"]
struct SliceFilter {
    #[parameters]
    args: SliceArgs,
}

/// The start and end of `offset, length` within `len` items, computed
/// without overflow (the standard filter adds them as they come).
fn window(offset: i64, length: i64, len: usize) -> (usize, usize) {
    let len = len as i128;
    let start = if offset < 0 { (len + i128::from(offset)).max(0) } else { i128::from(offset).min(len) };
    let end = (start + i128::from(length)).min(len);
    (start as usize, end.max(start) as usize)
}

impl Filter for SliceFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let args = self.args.evaluate(runtime)?;
        let length = args.length.unwrap_or(1);
        if length < 1 {
            return Err(fail("slice: the length must be a positive number"));
        }
        if let Some(list) = input.as_array() {
            let (start, end) = window(args.offset, length, list.size() as usize);
            return Ok(Value::Array(list.values().skip(start).take(end - start).map(ValueView::to_value).collect()));
        }
        let text = input.to_kstr();
        let (start, end) = window(args.offset, length, text.chars().count());
        Ok(Value::scalar(text.chars().skip(start).take(end - start).collect::<String>()))
    }
}

#[derive(Debug, FilterParameters)]
struct ReplaceArgs {
    #[parameter(description = "The text to search.", arg_type = "str")]
    search: Expression,
    #[parameter(description = "What replaces each occurrence (nothing when left out).", arg_type = "str")]
    replace: Option<Expression>,
}

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(
    name = "replace",
    description = "Replaces every occurrence of `search` with `replace`, within the render budget.",
    parameters(ReplaceArgs),
    parsed(ReplaceFilter)
)]
pub(crate) struct Replace;

#[derive(Debug, FromFilterParameters, Display_filter)]
#[name = "replace"]
struct ReplaceFilter {
    #[parameters]
    args: ReplaceArgs,
}

impl Filter for ReplaceFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let args = self.args.evaluate(runtime)?;
        let input = input.to_kstr();
        let replace = args.replace.unwrap_or_else(|| "".into());
        let search = args.search.as_str();
        // An empty search matches between every character.
        let count = if search.is_empty() { input.chars().count() + 1 } else { input.matches(search).count() };
        within_budget((input.len() - count * search.len()).saturating_add(count.saturating_mul(replace.len())))?;
        Ok(Value::scalar(input.replace(search, replace.as_str())))
    }
}

#[derive(Debug, FilterParameters)]
struct JoinArgs {
    #[parameter(description = "The separator between the items (one space when left out).", arg_type = "str")]
    separator: Option<Expression>,
}

#[derive(Clone, ParseFilter, FilterReflection)]
#[filter(
    name = "join",
    description = "Joins the items of a list with a separator, within the render budget.",
    parameters(JoinArgs),
    parsed(JoinFilter)
)]
pub(crate) struct Join;

#[derive(Debug, FromFilterParameters, Display_filter)]
#[name = "join"]
struct JoinFilter {
    #[parameters]
    args: JoinArgs,
}

impl Filter for JoinFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let args = self.args.evaluate(runtime)?;
        let separator = args.separator.unwrap_or_else(|| " ".into());
        let list = input.as_array().ok_or_else(|| fail("join: a list is expected"))?;
        let items: Vec<KStringCow<'_>> = list.values().map(|v| v.to_kstr()).collect();
        let total = items.iter().map(|i| i.len()).sum::<usize>();
        within_budget(total.saturating_add(items.len().saturating_mul(separator.len())))?;
        Ok(Value::scalar(items.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(separator.as_str())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{render, RenderError};
    use serde_json::Map;

    fn run(text: &str) -> Result<String, RenderError> {
        render(text, &Map::new())
    }

    #[test]
    fn arithmetic_that_overflows_is_an_error_not_a_panic() {
        for text in [
            "{{ -9223372036854775808 | divided_by: -1 }}",
            "{{ -9223372036854775808 | modulo: -1 }}",
            "{{ 9223372036854775807 | plus: 1 }}",
            "{{ -9223372036854775808 | minus: 1 }}",
            "{{ 9223372036854775807 | times: 2 }}",
            "{{ -9223372036854775808 | abs }}",
            "{{ 1 | divided_by: 0 }}",
        ] {
            assert!(run(text).is_err(), "{text}");
        }
        assert_eq!(
            run("{{ 7 | divided_by: 2 }} {{ 7 | modulo: 3 }} {{ 2 | times: 3 | plus: 1 | minus: 2 }} {{ -3 | abs }}")
                .unwrap(),
            "3 1 5 3"
        );
        assert_eq!(run("{{ 7.0 | divided_by: 2 }}").unwrap(), "3.5");
    }

    #[test]
    fn a_date_cannot_ask_for_a_huge_width_and_uniq_keeps_the_first() {
        assert!(run("{{ 'now' | date: '%99999999999Y' }}").is_err());
        assert!(run("{{ 'now' | date: '%065Y' }}").is_err());
        assert_eq!(run("{{ '2016-06-13 02:30:00 +0300' | date: '%Y-%m-%d' }}").unwrap(), "2016-06-13");
        assert_eq!(run("{{ 'b,a,b,c,a' | split: ',' | uniq | join: '' }}").unwrap(), "bac");
        assert_eq!(run("{{ 'abc' | slice: 1, 9223372036854775807 }}").unwrap(), "bc");
        assert_eq!(run("{{ 'abcdef' | slice: -3, 2 }}{{ 'abc' | slice: 0 }}").unwrap(), "dea");
        assert_eq!(run("{{ 'a,b,c' | split: ',' | slice: 1, 5 | join: '' }}").unwrap(), "bc");
        assert!(run("{{ 'abc' | slice: -9223372036854775808, 9223372036854775807 }}").is_ok());
    }
}
