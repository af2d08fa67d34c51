//! The general path: simd-json's tape with reused buffers, and a small cursor over it that
//! knows node positions (so Kraken v2's JSON numbers can be read back as their exact text).

use simd_json::{Buffers, Node, StaticNode, Tape};

use crate::error::{Reject, RejectReason};

/// Reusable simd-json state: after warm-up, parsing allocates nothing.
pub(crate) struct JsonParser {
    buffers: Buffers,
    tape: Option<Tape<'static>>,
    scratch: Vec<u8>,
    numbers: Vec<(u32, u32)>,
}

impl std::fmt::Debug for JsonParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonParser").finish_non_exhaustive()
    }
}

impl JsonParser {
    pub(crate) fn new() -> Self {
        Self {
            buffers: Buffers::new(4096),
            tape: Some(Tape::null().reset()),
            scratch: Vec::new(),
            numbers: Vec::new(),
        }
    }

    /// Parses `bytes` in place (simd-json unescapes strings inside the buffer) and runs
    /// `decode` on the document.
    pub(crate) fn parse<R>(
        &mut self,
        bytes: &mut [u8],
        decode: impl FnOnce(Doc<'_, '_>) -> Result<R, Reject>,
    ) -> Result<R, Reject> {
        let mut tape = self.tape.take().unwrap_or_else(Tape::null).reset();
        let result = match simd_json::fill_tape(bytes, &mut self.buffers, &mut tape) {
            Ok(()) => Some(decode(Doc {
                nodes: &tape.0,
                raw: &[],
                numbers: &[],
            })),
            Err(_) => None,
        };
        self.tape = Some(tape.reset());
        match result {
            Some(result) => result,
            None => Err(Reject::new(classify_invalid(bytes), "json")),
        }
    }

    /// As [`JsonParser::parse`], but parses a copy and leaves `bytes` untouched so that
    /// [`Val::number_text`] can return the exact text of JSON numbers.
    pub(crate) fn parse_keeping_numbers<R>(
        &mut self,
        bytes: &[u8],
        decode: impl FnOnce(Doc<'_, '_>) -> Result<R, Reject>,
    ) -> Result<R, Reject> {
        self.scratch.clear();
        self.scratch.extend_from_slice(bytes);
        let mut tape = self.tape.take().unwrap_or_else(Tape::null).reset();
        let result = match simd_json::fill_tape(&mut self.scratch, &mut self.buffers, &mut tape) {
            Ok(()) => {
                // Number tokens, in document order, are the structural positions that hold
                // a '-' or a digit (strings start with '"', literals with t/f/n); the tape
                // lists the number nodes in the same order.
                self.numbers.clear();
                let mut starts = self
                    .buffers
                    .structural_indexes()
                    .iter()
                    .copied()
                    .filter(|&i| matches!(bytes.get(i as usize), Some(b'-' | b'0'..=b'9')));
                let mut consistent = true;
                for (index, node) in tape.0.iter().enumerate() {
                    if let Node::Static(
                        StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_),
                    ) = node
                    {
                        match starts.next() {
                            Some(start) => self.numbers.push((index as u32, start)),
                            None => consistent = false,
                        }
                    }
                }
                if consistent && starts.next().is_none() {
                    decode(Doc {
                        nodes: &tape.0,
                        raw: bytes,
                        numbers: &self.numbers,
                    })
                } else {
                    Err(Reject::new(RejectReason::Malformed, "json numbers"))
                }
            }
            Err(_) => Err(Reject::new(classify_invalid(bytes), "json")),
        };
        self.tape = Some(tape.reset());
        result
    }
}

/// Tells a truncated document (a valid prefix of JSON that ends too early) from other
/// invalid input, by running a JSON grammar over it. Deterministic, no allocation.
pub(crate) fn classify_invalid(bytes: &[u8]) -> RejectReason {
    match json_prefix(bytes) {
        Prefix::Incomplete => RejectReason::Truncated,
        Prefix::Invalid | Prefix::Complete => RejectReason::Malformed,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Prefix {
    /// Valid so far, but a value is unfinished.
    Incomplete,
    /// Not JSON.
    Invalid,
    /// A complete document (simd-json refused it for another reason: UTF-8, depth, range).
    Complete,
}

/// What the grammar expects next.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Expect {
    Value,
    ValueOrArrayEnd,
    KeyOrObjectEnd,
    Key,
    Colon,
    CommaOrEnd,
    Done,
}

fn json_prefix(bytes: &[u8]) -> Prefix {
    const MAX_DEPTH: usize = 1024;
    // One bit per open container: 1 = object, 0 = array.
    let mut stack = [0u64; MAX_DEPTH / 64];
    let mut depth = 0usize;
    let mut expect = Expect::Value;
    let mut i = 0;
    let n = bytes.len();
    while i < n {
        let b = bytes[i];
        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
            continue;
        }
        let in_object = |depth: usize, stack: &[u64]| {
            depth > 0 && stack[(depth - 1) / 64] >> ((depth - 1) % 64) & 1 == 1
        };
        match expect {
            Expect::Done => return Prefix::Invalid,
            Expect::Colon => {
                if b != b':' {
                    return Prefix::Invalid;
                }
                expect = Expect::Value;
                i += 1;
            }
            Expect::CommaOrEnd => {
                let object = in_object(depth, &stack);
                match b {
                    b',' => expect = if object { Expect::Key } else { Expect::Value },
                    b'}' if object => depth -= 1,
                    b']' if !object && depth > 0 => depth -= 1,
                    _ => return Prefix::Invalid,
                }
                if b != b',' {
                    expect = if depth == 0 {
                        Expect::Done
                    } else {
                        Expect::CommaOrEnd
                    };
                }
                i += 1;
            }
            Expect::Key | Expect::KeyOrObjectEnd => {
                if b == b'}' && expect == Expect::KeyOrObjectEnd {
                    depth -= 1;
                    expect = if depth == 0 {
                        Expect::Done
                    } else {
                        Expect::CommaOrEnd
                    };
                    i += 1;
                } else if b == b'"' {
                    match string_end(bytes, i + 1) {
                        Ok(end) => i = end,
                        Err(prefix) => return prefix,
                    }
                    expect = Expect::Colon;
                } else {
                    return Prefix::Invalid;
                }
            }
            Expect::Value | Expect::ValueOrArrayEnd => {
                if b == b']' && expect == Expect::ValueOrArrayEnd {
                    depth -= 1;
                    expect = if depth == 0 {
                        Expect::Done
                    } else {
                        Expect::CommaOrEnd
                    };
                    i += 1;
                    continue;
                }
                match b {
                    b'{' | b'[' => {
                        if depth == MAX_DEPTH {
                            return Prefix::Invalid;
                        }
                        let (word, bit) = (depth / 64, depth % 64);
                        if b == b'{' {
                            stack[word] |= 1 << bit;
                            expect = Expect::KeyOrObjectEnd;
                        } else {
                            stack[word] &= !(1 << bit);
                            expect = Expect::ValueOrArrayEnd;
                        }
                        depth += 1;
                        i += 1;
                        continue;
                    }
                    b'"' => match string_end(bytes, i + 1) {
                        Ok(end) => i = end,
                        Err(prefix) => return prefix,
                    },
                    b't' | b'f' | b'n' => {
                        let word: &[u8] = match b {
                            b't' => b"true",
                            b'f' => b"false",
                            _ => b"null",
                        };
                        let rest = &bytes[i..];
                        let len = word.len().min(rest.len());
                        if rest[..len] != word[..len] {
                            return Prefix::Invalid;
                        }
                        if rest.len() < word.len() {
                            return Prefix::Incomplete;
                        }
                        i += word.len();
                    }
                    b'-' | b'0'..=b'9' => match number_end(bytes, i) {
                        Ok(end) => i = end,
                        Err(prefix) => return prefix,
                    },
                    _ => return Prefix::Invalid,
                }
                expect = if depth == 0 {
                    Expect::Done
                } else {
                    Expect::CommaOrEnd
                };
            }
        }
    }
    if expect == Expect::Done {
        Prefix::Complete
    } else {
        Prefix::Incomplete
    }
}

/// The index after the closing quote of a string whose content starts at `i`.
fn string_end(bytes: &[u8], mut i: usize) -> Result<usize, Prefix> {
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Ok(i + 1),
            b'\\' => {
                let Some(&escape) = bytes.get(i + 1) else {
                    return Err(Prefix::Incomplete);
                };
                match escape {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' => {
                        for k in 0..4 {
                            match bytes.get(i + 2 + k) {
                                None => return Err(Prefix::Incomplete),
                                Some(h) if h.is_ascii_hexdigit() => {}
                                Some(_) => return Err(Prefix::Invalid),
                            }
                        }
                        i += 6;
                    }
                    _ => return Err(Prefix::Invalid),
                }
            }
            0..=0x1f => return Err(Prefix::Invalid),
            _ => i += 1,
        }
    }
    Err(Prefix::Incomplete)
}

/// The index after a number starting at `i` (JSON grammar). A number that reaches the end
/// of the input may continue: incomplete, unless it is a complete top-level document, which
/// the caller sees as `Done` only if followed by nothing (so report it as complete here).
fn number_end(bytes: &[u8], mut i: usize) -> Result<usize, Prefix> {
    let at_end = |i: usize| i >= bytes.len();
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    if bytes.get(i) == Some(&b'-') {
        i += 1;
    }
    if at_end(i) {
        return Err(Prefix::Incomplete);
    }
    if bytes[i] == b'0' {
        i += 1;
    } else if digit(i) {
        while digit(i) {
            i += 1;
        }
    } else {
        return Err(Prefix::Invalid);
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        if at_end(i) {
            return Err(Prefix::Incomplete);
        }
        if !digit(i) {
            return Err(Prefix::Invalid);
        }
        while digit(i) {
            i += 1;
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if at_end(i) {
            return Err(Prefix::Incomplete);
        }
        if !digit(i) {
            return Err(Prefix::Invalid);
        }
        while digit(i) {
            i += 1;
        }
    }
    Ok(i)
}

/// A parsed document.
#[derive(Clone, Copy)]
pub(crate) struct Doc<'t, 'a> {
    nodes: &'t [Node<'a>],
    raw: &'t [u8],
    numbers: &'t [(u32, u32)],
}

impl<'t, 'a> Doc<'t, 'a> {
    pub(crate) fn root(self) -> Val<'t, 'a> {
        Val {
            doc: self,
            index: 0,
        }
    }
}

/// One value of a [`Doc`].
#[derive(Clone, Copy)]
pub(crate) struct Val<'t, 'a> {
    doc: Doc<'t, 'a>,
    index: usize,
}

/// Number of tape nodes a value spans.
#[inline]
fn span(node: &Node<'_>) -> usize {
    match node {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

impl<'t, 'a> Val<'t, 'a> {
    #[inline]
    fn node(&self) -> Option<&'t Node<'a>> {
        self.doc.nodes.get(self.index)
    }

    /// The object's fields, or `WrongType`.
    #[inline]
    pub(crate) fn object(self, field: &'static str) -> Result<Fields<'t, 'a>, Reject> {
        match self.node() {
            Some(Node::Object { len, .. }) => Ok(Fields {
                doc: self.doc,
                next: self.index + 1,
                remaining: *len,
            }),
            _ => Err(Reject::new(RejectReason::WrongType, field)),
        }
    }

    /// The array's elements, or `WrongType`.
    #[inline]
    pub(crate) fn array(self, field: &'static str) -> Result<Items<'t, 'a>, Reject> {
        match self.node() {
            Some(Node::Array { len, .. }) => Ok(Items {
                doc: self.doc,
                next: self.index + 1,
                remaining: *len,
            }),
            _ => Err(Reject::new(RejectReason::WrongType, field)),
        }
    }

    #[inline]
    pub(crate) fn is_object(self) -> bool {
        matches!(self.node(), Some(Node::Object { .. }))
    }

    /// The string, or `WrongType`.
    #[inline]
    pub(crate) fn str(self, field: &'static str) -> Result<&'a str, Reject> {
        match self.node() {
            Some(Node::String(s)) => Ok(s),
            _ => Err(Reject::new(RejectReason::WrongType, field)),
        }
    }

    /// The string's bytes, or `WrongType`.
    #[inline]
    pub(crate) fn bytes(self, field: &'static str) -> Result<&'a [u8], Reject> {
        self.str(field).map(str::as_bytes)
    }

    /// A non-negative JSON integer.
    #[inline]
    pub(crate) fn u64(self, field: &'static str) -> Result<u64, Reject> {
        match self.node() {
            Some(Node::Static(StaticNode::U64(v))) => Ok(*v),
            Some(Node::Static(StaticNode::I64(v))) => {
                u64::try_from(*v).map_err(|_| Reject::new(RejectReason::NumberOutOfRange, field))
            }
            _ => Err(Reject::new(RejectReason::WrongType, field)),
        }
    }

    /// A JSON boolean.
    #[inline]
    pub(crate) fn bool(self, field: &'static str) -> Result<bool, Reject> {
        match self.node() {
            Some(Node::Static(StaticNode::Bool(v))) => Ok(*v),
            _ => Err(Reject::new(RejectReason::WrongType, field)),
        }
    }

    /// The exact text of a JSON number (only in documents from
    /// [`JsonParser::parse_keeping_numbers`]), or `WrongType`.
    pub(crate) fn number_text(self, field: &'static str) -> Result<&'t [u8], Reject> {
        let wrong = Reject::new(RejectReason::WrongType, field);
        match self.node() {
            Some(Node::Static(StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_))) => {}
            _ => return Err(wrong),
        }
        let numbers = self.doc.numbers;
        let position = numbers
            .binary_search_by_key(&(self.index as u32), |&(node, _)| node)
            .map_err(|_| wrong)?;
        let start = numbers[position].1 as usize;
        let raw = self.doc.raw;
        let rest = raw.get(start..).ok_or(wrong)?;
        let len = rest
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(rest.len());
        Ok(&rest[..len])
    }
}

/// Iterator over an object's `(key, value)` pairs.
pub(crate) struct Fields<'t, 'a> {
    doc: Doc<'t, 'a>,
    next: usize,
    remaining: usize,
}

impl<'t, 'a> Iterator for Fields<'t, 'a> {
    type Item = (&'a str, Val<'t, 'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let key = match self.doc.nodes.get(self.next)? {
            Node::String(key) => *key,
            _ => return None,
        };
        let value_index = self.next + 1;
        let value_span = span(self.doc.nodes.get(value_index)?);
        self.next = value_index + value_span;
        self.remaining -= 1;
        Some((
            key,
            Val {
                doc: self.doc,
                index: value_index,
            },
        ))
    }
}

/// Iterator over an array's elements.
pub(crate) struct Items<'t, 'a> {
    doc: Doc<'t, 'a>,
    next: usize,
    remaining: usize,
}

impl<'t, 'a> Items<'t, 'a> {
    pub(crate) fn len(&self) -> usize {
        self.remaining
    }
}

impl<'t, 'a> Iterator for Items<'t, 'a> {
    type Item = Val<'t, 'a>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let index = self.next;
        self.next = index + span(self.doc.nodes.get(index)?);
        self.remaining -= 1;
        Some(Val {
            doc: self.doc,
            index,
        })
    }
}

/// Stores a field's value, rejecting a second occurrence of the same key.
#[inline]
pub(crate) fn put<T>(slot: &mut Option<T>, value: T, field: &'static str) -> Result<(), Reject> {
    if slot.is_some() {
        return Err(Reject::new(RejectReason::DuplicateField, field));
    }
    *slot = Some(value);
    Ok(())
}

/// A required field's value.
#[inline]
pub(crate) fn required<T>(slot: Option<T>, field: &'static str) -> Result<T, Reject> {
    slot.ok_or(Reject::new(RejectReason::MissingField, field))
}

/// An unknown field: rejected unless the configuration allows it.
#[inline]
pub(crate) fn unknown(allow: bool) -> Result<(), Reject> {
    if allow {
        Ok(())
    } else {
        Err(Reject::new(RejectReason::UnknownField, "unknown"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_objects_and_arrays() {
        let mut parser = JsonParser::new();
        let mut text = br#"{"a":[1,{"x":true},"s"],"b":-3,"c":"t\u0041"}"#.to_vec();
        let seen = parser
            .parse(&mut text, |doc| {
                let mut keys = Vec::new();
                for (key, value) in doc.root().object("root")? {
                    keys.push(key.to_owned());
                    match key {
                        "a" => {
                            let items: Vec<_> = value.array("a")?.collect();
                            assert_eq!(items.len(), 3);
                            assert_eq!(items[0].u64("a0")?, 1);
                            let inner: Vec<_> = items[1].object("a1")?.collect();
                            assert!(inner[0].1.bool("x")?);
                            assert_eq!(items[2].str("a2")?, "s");
                        }
                        "b" => {
                            assert_eq!(
                                value.u64("b").unwrap_err().reason,
                                RejectReason::NumberOutOfRange
                            )
                        }
                        "c" => assert_eq!(value.str("c")?, "tA"),
                        _ => unreachable!(),
                    }
                }
                Ok(keys)
            })
            .unwrap();
        assert_eq!(seen, ["a", "b", "c"]);
    }

    #[test]
    fn keeps_exact_number_text() {
        let mut parser = JsonParser::new();
        let text = br#"{"p":45283.50,"q":[0.10000000,-1e-5],"s":"1.5","n":12}"#;
        let texts = parser
            .parse_keeping_numbers(text, |doc| {
                let mut out = Vec::new();
                for (key, value) in doc.root().object("root")? {
                    match key {
                        "q" => {
                            for item in value.array("q")? {
                                out.push(item.number_text("q")?.to_vec());
                            }
                        }
                        "s" => assert!(value.number_text("s").is_err()),
                        _ => out.push(value.number_text("p")?.to_vec()),
                    }
                }
                Ok(out)
            })
            .unwrap();
        assert_eq!(texts, [&b"45283.50"[..], b"0.10000000", b"-1e-5", b"12"]);
    }

    #[test]
    fn classifies_invalid_input() {
        let mut parser = JsonParser::new();
        for (text, reason) in [
            (&br#"{"a":"b"#[..], RejectReason::Truncated),
            (br#"{"a":[1,2"#, RejectReason::Truncated),
            (b"", RejectReason::Truncated),
            (b"hello", RejectReason::Malformed),
            (br#"{"a":1}}"#, RejectReason::Malformed),
            (br#"{"a":01}"#, RejectReason::Malformed),
            (b"\x01garbage{", RejectReason::Malformed),
            (br#"{"a":tru"#, RejectReason::Truncated),
            (br#"{"a":-"#, RejectReason::Truncated),
            (br#"{"a":1.5e"#, RejectReason::Truncated),
            (br#"{"a":"\u00"#, RejectReason::Truncated),
            (br#"{"a":"\x"}"#, RejectReason::Malformed),
            (br#"{"a" 1}"#, RejectReason::Malformed),
            (br#"[1,]"#, RejectReason::Malformed),
            (b"{\"a\":\"\xff\"}", RejectReason::Malformed),
        ] {
            let mut bytes = text.to_vec();
            let result = parser.parse(&mut bytes, |_| Ok(()));
            assert_eq!(
                result.unwrap_err().reason,
                reason,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
