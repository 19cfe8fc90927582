//! A SOQL subset: parse, check against the schema (and hidden fields), evaluate, sort, render.
//!
//! Supported: `SELECT f, Rel.f, COUNT() FROM T [WHERE …] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …]
//! [LIMIT n] [OFFSET n]`; conditions with `= != <> < > <= >= LIKE IN NOT IN`, `AND OR NOT` and
//! parentheses; literals: quoted strings with the documented escapes, numbers, `true/false/null`,
//! date and datetime literals, and `TODAY YESTERDAY TOMORROW LAST_N_DAYS:n NEXT_N_DAYS:n N_DAYS_AGO:n`.
//! Text comparisons are case-insensitive, as in Salesforce. Dates are evaluated in UTC.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::ids::SfId;
use crate::schema::{ALL_OBJS, FType, Kind, Obj};
use crate::store::{ApiError, OrgData, Record};
use crate::value::{DAY_MS, J, Val, parse_date, parse_dt, push_escaped, write_str};

const ESC_PCT: char = '\u{E000}';
const ESC_UND: char = '\u{E001}';

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Date(String),
    Comma,
    LParen,
    RParen,
    Colon,
    Op(&'static str),
    Eof,
}

struct Lexed {
    toks: Vec<(Tok, usize)>,
}

pub(crate) fn malformed(src: &str, col: usize, msg: &str) -> ApiError {
    malformed_code(src, col, "MALFORMED_QUERY", msg)
}

fn malformed_code(src: &str, col: usize, code: &str, msg: &str) -> ApiError {
    let line = src.replace(['\n', '\r'], " ");
    let caret = format!("{}^", " ".repeat(col.saturating_sub(1)));
    ApiError::new(
        400,
        code,
        format!("\n{line}\n{caret}\nERROR at Row:1:Column:{col}\n{msg}"),
    )
}

fn lex(src: &str) -> Result<Lexed, ApiError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            ',' => {
                toks.push((Tok::Comma, col));
                i += 1;
            }
            '(' => {
                toks.push((Tok::LParen, col));
                i += 1;
            }
            ')' => {
                toks.push((Tok::RParen, col));
                i += 1;
            }
            ':' => {
                toks.push((Tok::Colon, col));
                i += 1;
            }
            '=' => {
                toks.push((Tok::Op("="), col));
                i += 1;
            }
            '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, n) = match (c, next) {
                    ('!', Some('=')) => ("!=", 2),
                    ('<', Some('>')) => ("!=", 2),
                    ('<', Some('=')) => ("<=", 2),
                    ('>', Some('=')) => (">=", 2),
                    ('<', _) => ("<", 1),
                    ('>', _) => (">", 1),
                    _ => return Err(malformed(src, col, &format!("unexpected token: '{c}'"))),
                };
                toks.push((Tok::Op(op), col));
                i += n;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(malformed(src, col, "unexpected token: <EOF>"));
                    };
                    i += 1;
                    match c {
                        '\'' => break,
                        '\\' => {
                            let Some(&e) = chars.get(i) else {
                                return Err(malformed(src, col, "unexpected token: <EOF>"));
                            };
                            i += 1;
                            s.push(match e {
                                '\'' => '\'',
                                '"' => '"',
                                '\\' => '\\',
                                'n' => '\n',
                                'r' => '\r',
                                't' => '\t',
                                'b' => '\u{8}',
                                'f' => '\u{c}',
                                '%' => ESC_PCT,
                                '_' => ESC_UND,
                                'u' => {
                                    let hex: String = chars.get(i..i + 4).map(|h| h.iter().collect()).unwrap_or_default();
                                    i += 4;
                                    u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).ok_or_else(|| {
                                        malformed(src, col, "Invalid string literal. Illegal unicode escape sequence")
                                    })?
                                }
                                _ => {
                                    return Err(malformed(
                                        src,
                                        col,
                                        &format!("Invalid string literal '{s}'. Illegal character sequence '\\{e}' in string literal."),
                                    ))
                                }
                            });
                        }
                        c => s.push(c),
                    }
                }
                toks.push((Tok::Str(s), col));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                let is_date = chars.len() >= i + 5
                    && chars[i..i + 4].iter().all(|d| d.is_ascii_digit())
                    && chars[i + 4] == '-';
                i += 1;
                if is_date {
                    while i < chars.len()
                        && (chars[i].is_ascii_digit()
                            || matches!(chars[i], '-' | ':' | 'T' | 'Z' | '+' | '.'))
                    {
                        i += 1;
                    }
                    toks.push((Tok::Date(chars[start..i].iter().collect()), col));
                } else {
                    while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                        i += 1;
                    }
                    toks.push((Tok::Num(chars[start..i].iter().collect()), col));
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
                {
                    i += 1;
                }
                toks.push((Tok::Ident(chars[start..i].iter().collect()), col));
            }
            _ => return Err(malformed(src, col, &format!("unexpected token: '{c}'"))),
        }
    }
    toks.push((Tok::Eof, chars.len() + 1));
    Ok(Lexed { toks })
}

/// A resolved field reference: zero or more relationship hops, then a field.
#[derive(Clone, Debug)]
pub(crate) struct Path {
    /// Reference field indices followed, and the relationship names as written canonically.
    hops: Vec<(u16, &'static str)>,
    /// The final field name (canonical) and its index on the final object when not polymorphic.
    field: &'static str,
    field_idx: Option<u16>,
    ty: FType,
}

#[derive(Clone, Debug)]
enum Lit {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Dt(i64),
    Date(i32),
    /// A date literal range `[start, end)` in ms.
    Range(i64, i64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

#[derive(Clone, Debug)]
enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Cmp(Path, Op, Lit),
    In(Path, bool, Vec<Lit>),
    Like(Path, bool, Vec<char>),
}

#[derive(Clone, Debug)]
pub(crate) struct OrderItem {
    path: Path,
    desc: bool,
    nulls_last: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Query {
    pub(crate) obj: Obj,
    /// `None` for `SELECT COUNT()`.
    pub(crate) select: Option<Vec<Path>>,
    cond: Option<Cond>,
    order: Vec<OrderItem>,
    pub(crate) limit: Option<usize>,
    pub(crate) offset: usize,
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
    obj: Option<Obj>,
    data: &'a OrgData,
    now: i64,
}

fn kw(t: &Tok, k: &str) -> bool {
    matches!(t, Tok::Ident(s) if s.eq_ignore_ascii_case(k))
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].0
    }
    fn col(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].1
    }
    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }
    fn unexpected(&self) -> ApiError {
        let t = match self.peek() {
            Tok::Eof => "<EOF>".to_string(),
            Tok::Ident(s) | Tok::Num(s) | Tok::Date(s) => s.clone(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Comma => ",".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Colon => ":".into(),
            Tok::Op(o) => o.to_string(),
        };
        malformed(self.src, self.col(), &format!("unexpected token: {t}"))
    }
    fn expect_kw(&mut self, k: &str) -> Result<(), ApiError> {
        if kw(self.peek(), k) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn resolve(&self, name: &str, col: usize) -> Result<Path, ApiError> {
        let Some(obj) = self.obj else {
            return Err(self.unexpected());
        };
        let parts: Vec<&str> = name.split('.').collect();
        // A leading object-name qualifier (`Lead.Phone`) is allowed.
        let parts = if parts.len() > 1 && parts[0].eq_ignore_ascii_case(obj.name()) {
            &parts[1..]
        } else {
            &parts[..]
        };
        let no_column = |o: Obj, f: &str| {
            malformed_code(
                self.src,
                col,
                "INVALID_FIELD",
                &format!(
                    "No such column '{f}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                    o.name()
                ),
            )
        };
        let mut cur = obj;
        let mut hops = Vec::new();
        let mut polymorphic = false;
        for rel in &parts[..parts.len() - 1] {
            let Some((idx, fd)) = cur.relationship(rel) else {
                return Err(malformed_code(
                    self.src,
                    col,
                    "INVALID_FIELD",
                    &format!(
                        "Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
                    ),
                ));
            };
            if self.data.is_hidden(cur, idx) {
                return Err(no_column(cur, fd.rel.unwrap_or(rel)));
            }
            hops.push((idx, fd.rel.unwrap_or("")));
            polymorphic |= fd.refs.len() > 1;
            cur = fd
                .refs
                .first()
                .and_then(|r| Obj::parse(r))
                .unwrap_or(Obj::User);
        }
        let last = parts[parts.len() - 1];
        let Some((idx, fd)) = cur
            .field(last)
            .filter(|(i, _)| !self.data.is_hidden(cur, *i))
        else {
            return Err(no_column(cur, last));
        };
        Ok(Path {
            hops,
            field: fd.name,
            field_idx: (!polymorphic).then_some(idx),
            ty: fd.ty,
        })
    }

    fn parse_query(&mut self) -> Result<Query, ApiError> {
        self.expect_kw("SELECT")?;
        // Find FROM first: field resolution needs the object.
        let from_pos = self
            .toks
            .iter()
            .position(|(t, _)| kw(t, "FROM"))
            .ok_or_else(|| {
                malformed(
                    self.src,
                    self.src.chars().count() + 1,
                    "unexpected token: <EOF>",
                )
            })?;
        let obj_tok = self.toks.get(from_pos + 1).cloned();
        let obj = match obj_tok {
            Some((Tok::Ident(name), col)) => Obj::parse(&name).ok_or_else(|| {
                malformed_code(
                    self.src,
                    col,
                    "INVALID_TYPE",
                    &format!("sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."),
                )
            })?,
            Some((_, col)) => return Err(malformed(self.src, col, "unexpected token")),
            None => return Err(malformed(self.src, self.src.len() + 1, "unexpected token: <EOF>")),
        };
        self.obj = Some(obj);
        let select = if kw(self.peek(), "COUNT")
            && self
                .toks
                .get(self.pos + 1)
                .is_some_and(|t| t.0 == Tok::LParen)
        {
            self.pos += 2;
            if self.next() != Tok::RParen {
                self.pos -= 1;
                return Err(self.unexpected());
            }
            None
        } else {
            let mut fields: Vec<Path> = Vec::new();
            loop {
                let col = self.col();
                match self.next() {
                    Tok::Ident(name) if !name.eq_ignore_ascii_case("FROM") => {
                        let p = self.resolve(&name, col)?;
                        if fields.iter().any(|f| f.same(&p)) {
                            return Err(malformed(
                                self.src,
                                col,
                                &format!("duplicate field selected: {name}"),
                            ));
                        }
                        fields.push(p);
                    }
                    _ => {
                        self.pos -= 1;
                        return Err(self.unexpected());
                    }
                }
                if *self.peek() == Tok::Comma {
                    self.pos += 1;
                } else {
                    break;
                }
            }
            Some(fields)
        };
        self.expect_kw("FROM")?;
        self.pos += 1; // object name, already resolved
        let mut q = Query {
            obj,
            select,
            cond: None,
            order: Vec::new(),
            limit: None,
            offset: 0,
        };
        if kw(self.peek(), "WHERE") {
            self.pos += 1;
            q.cond = Some(self.parse_or()?);
        }
        if kw(self.peek(), "ORDER") {
            self.pos += 1;
            self.expect_kw("BY")?;
            loop {
                let col = self.col();
                let Tok::Ident(name) = self.next() else {
                    self.pos -= 1;
                    return Err(self.unexpected());
                };
                let path = self.resolve(&name, col)?;
                let mut desc = false;
                if kw(self.peek(), "ASC") {
                    self.pos += 1;
                } else if kw(self.peek(), "DESC") {
                    self.pos += 1;
                    desc = true;
                }
                let mut nulls_last = desc;
                if kw(self.peek(), "NULLS") {
                    self.pos += 1;
                    if kw(self.peek(), "FIRST") {
                        nulls_last = false;
                    } else if kw(self.peek(), "LAST") {
                        nulls_last = true;
                    } else {
                        return Err(self.unexpected());
                    }
                    self.pos += 1;
                }
                q.order.push(OrderItem {
                    path,
                    desc,
                    nulls_last,
                });
                if *self.peek() == Tok::Comma {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        if kw(self.peek(), "LIMIT") {
            self.pos += 1;
            q.limit = Some(self.parse_uint()?);
        }
        if kw(self.peek(), "OFFSET") {
            self.pos += 1;
            let col = self.col();
            q.offset = self.parse_uint()?;
            if q.offset > 2000 {
                return Err(ApiError::new(
                    400,
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    format!("Maximum SOQL offset allowed is 2000 (column {col})"),
                ));
            }
        }
        if *self.peek() != Tok::Eof {
            return Err(self.unexpected());
        }
        Ok(q)
    }

    fn parse_uint(&mut self) -> Result<usize, ApiError> {
        match self.next() {
            Tok::Num(n) => n.parse().map_err(|_| {
                self.pos -= 1;
                self.unexpected()
            }),
            _ => {
                self.pos -= 1;
                Err(self.unexpected())
            }
        }
    }

    fn parse_or(&mut self) -> Result<Cond, ApiError> {
        let mut v = vec![self.parse_and()?];
        while kw(self.peek(), "OR") {
            self.pos += 1;
            v.push(self.parse_and()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Cond::Or(v)
        })
    }

    fn parse_and(&mut self) -> Result<Cond, ApiError> {
        let mut v = vec![self.parse_not()?];
        while kw(self.peek(), "AND") {
            self.pos += 1;
            v.push(self.parse_not()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Cond::And(v)
        })
    }

    fn parse_not(&mut self) -> Result<Cond, ApiError> {
        if kw(self.peek(), "NOT") {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.parse_not()?)));
        }
        if *self.peek() == Tok::LParen {
            self.pos += 1;
            let c = self.parse_or()?;
            if self.next() != Tok::RParen {
                self.pos -= 1;
                return Err(self.unexpected());
            }
            return Ok(c);
        }
        let col = self.col();
        let Tok::Ident(name) = self.next() else {
            self.pos -= 1;
            return Err(self.unexpected());
        };
        let path = self.resolve(&name, col)?;
        if path.ty == FType::Address {
            return Err(malformed(
                self.src,
                col,
                &format!("field '{name}' can not be filtered in a query call"),
            ));
        }
        let mut negate = false;
        if kw(self.peek(), "NOT") {
            self.pos += 1;
            negate = true;
            if !kw(self.peek(), "IN") && !kw(self.peek(), "LIKE") {
                return Err(self.unexpected());
            }
        }
        if kw(self.peek(), "IN") {
            self.pos += 1;
            if self.next() != Tok::LParen {
                self.pos -= 1;
                return Err(self.unexpected());
            }
            let mut lits = Vec::new();
            loop {
                let lcol = self.col();
                let l = self.parse_lit()?;
                self.check_lit(&path, &name, &l, lcol)?;
                lits.push(l);
                match self.next() {
                    Tok::Comma => continue,
                    Tok::RParen => break,
                    _ => {
                        self.pos -= 1;
                        return Err(self.unexpected());
                    }
                }
            }
            return Ok(Cond::In(path, negate, lits));
        }
        if kw(self.peek(), "LIKE") {
            self.pos += 1;
            let Tok::Str(pat) = self.next() else {
                self.pos -= 1;
                return Err(self.unexpected());
            };
            return Ok(Cond::Like(
                path,
                negate,
                pat.to_lowercase().chars().collect(),
            ));
        }
        let op = match self.next() {
            Tok::Op("=") => Op::Eq,
            Tok::Op("!=") => Op::Ne,
            Tok::Op("<") => Op::Lt,
            Tok::Op(">") => Op::Gt,
            Tok::Op("<=") => Op::Le,
            Tok::Op(">=") => Op::Ge,
            _ => {
                self.pos -= 1;
                return Err(self.unexpected());
            }
        };
        let lcol = self.col();
        let lit = self.parse_lit()?;
        self.check_lit(&path, &name, &lit, lcol)?;
        Ok(Cond::Cmp(path, op, lit))
    }

    fn check_lit(&self, path: &Path, name: &str, lit: &Lit, col: usize) -> Result<(), ApiError> {
        let ok = match (path.ty, lit) {
            (_, Lit::Null) => true,
            (FType::DateTime, l) => matches!(l, Lit::Dt(_) | Lit::Range(..)),
            (FType::Date, l) => matches!(l, Lit::Date(_) | Lit::Range(..)),
            (FType::Boolean, l) => matches!(l, Lit::Bool(_)),
            (FType::Int | FType::Double, l) => matches!(l, Lit::Num(_)),
            (_, l) => matches!(l, Lit::Str(_)),
        };
        if ok {
            return Ok(());
        }
        let quoted = matches!(lit, Lit::Str(_));
        let msg = match path.ty {
            FType::DateTime | FType::Date if quoted => format!(
                "value of filter criterion for field '{name}' must be of type {} and should not be enclosed in quotes",
                if path.ty == FType::Date {
                    "date"
                } else {
                    "dateTime"
                }
            ),
            FType::Boolean | FType::Int | FType::Double | FType::DateTime | FType::Date => format!(
                "value of filter criterion for field '{name}' must be of type {} and should not be enclosed in quotes",
                path.ty.api_name()
            ),
            _ => format!(
                "value of filter criterion for field '{name}' must be of type string and should be enclosed in quotes"
            ),
        };
        Err(malformed_code(
            self.src,
            col,
            "INVALID_QUERY_FILTER_OPERATOR",
            &msg,
        ))
    }

    fn parse_lit(&mut self) -> Result<Lit, ApiError> {
        let col = self.col();
        let today0 = self.now.div_euclid(DAY_MS) * DAY_MS;
        match self.next() {
            Tok::Str(s) => Ok(Lit::Str(s)),
            Tok::Num(n) => n
                .parse()
                .map(Lit::Num)
                .map_err(|_| malformed(self.src, col, &format!("unexpected token: {n}"))),
            Tok::Date(d) => if d.len() == 10 {
                parse_date(&d).map(Lit::Date)
            } else {
                parse_dt(&d).map(Lit::Dt)
            }
            .ok_or_else(|| {
                malformed(
                    self.src,
                    col,
                    &format!("line 1:{col} no viable alternative at character '{d}'"),
                )
            }),
            Tok::Ident(w) => {
                let up = w.to_ascii_uppercase();
                let day = |off: i64| Lit::Range(today0 + off * DAY_MS, today0 + (off + 1) * DAY_MS);
                match up.as_str() {
                    "NULL" => Ok(Lit::Null),
                    "TRUE" => Ok(Lit::Bool(true)),
                    "FALSE" => Ok(Lit::Bool(false)),
                    "TODAY" => Ok(day(0)),
                    "YESTERDAY" => Ok(day(-1)),
                    "TOMORROW" => Ok(day(1)),
                    "LAST_N_DAYS" | "NEXT_N_DAYS" | "N_DAYS_AGO" => {
                        if self.next() != Tok::Colon {
                            self.pos -= 1;
                            return Err(self.unexpected());
                        }
                        let n = self.parse_uint()? as i64;
                        Ok(match up.as_str() {
                            "LAST_N_DAYS" => Lit::Range(today0 - n * DAY_MS, today0 + DAY_MS),
                            "NEXT_N_DAYS" => Lit::Range(today0 + DAY_MS, today0 + (n + 1) * DAY_MS),
                            _ => day(-n),
                        })
                    }
                    _ => {
                        self.pos -= 1;
                        Err(self.unexpected())
                    }
                }
            }
            _ => {
                self.pos -= 1;
                Err(self.unexpected())
            }
        }
    }
}

impl Path {
    fn same(&self, o: &Path) -> bool {
        self.field == o.field && self.hops.iter().map(|h| h.0).eq(o.hops.iter().map(|h| h.0))
    }
}

/// Parse `src` against `data`'s schema (hidden fields behave as missing). `now` anchors date literals.
pub(crate) fn parse(src: &str, data: &OrgData) -> Result<Query, ApiError> {
    let lexed = lex(src)?;
    let mut p = Parser {
        src,
        toks: lexed.toks,
        pos: 0,
        obj: None,
        data,
        now: data.now(),
    };
    p.parse_query()
}

/// A parsed WHERE clause for one object (used by SOSL `RETURNING T(… WHERE …)`).
pub(crate) fn parse_for(
    obj: Obj,
    select: &str,
    rest: &str,
    data: &OrgData,
) -> Result<Query, ApiError> {
    let src = format!("SELECT {select} FROM {} {rest}", obj.name());
    parse(&src, data)
}

fn follow<'a>(
    data: &'a OrgData,
    mut o: Obj,
    mut rec: &'a Record,
    p: &Path,
) -> Option<(Obj, &'a Record)> {
    for (idx, _) in &p.hops {
        let Val::Id(id) = rec.get(*idx) else {
            // A computed reference (Task.AccountId) is not stored.
            let Val::Id(id) = data.value(o, rec, *idx) else {
                return None;
            };
            let (o2, r2) = data.lookup(id)?;
            o = o2;
            rec = r2;
            continue;
        };
        let (o2, r2) = data.lookup(*id)?;
        o = o2;
        rec = r2;
    }
    Some((o, rec))
}

fn path_val<'a>(data: &'a OrgData, o: Obj, rec: &'a Record, p: &Path) -> Cow<'a, Val> {
    if p.hops.is_empty()
        && let Some(i) = p.field_idx
    {
        let fd = &o.fields()[i as usize];
        if fd.kind == Kind::Stored && fd.ty != FType::Boolean {
            return Cow::Borrowed(rec.get(i));
        }
        return Cow::Owned(data.value(o, rec, i));
    }
    let Some((o2, r2)) = follow(data, o, rec, p) else {
        return Cow::Owned(Val::Null);
    };
    let idx = if p.hops.is_empty() { p.field_idx } else { None }.or_else(|| o2.field_idx(p.field));
    match idx {
        Some(i) => Cow::Owned(data.value(o2, r2, i)),
        None => Cow::Owned(Val::Null),
    }
}

fn unescape_lit(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ESC_PCT => '%',
            ESC_UND => '_',
            c => c,
        })
        .collect()
}

fn cmp_val_lit(v: &Val, l: &Lit) -> Option<Ordering> {
    match (v, l) {
        (Val::Str(s), Lit::Str(t)) => Some(s.to_lowercase().cmp(&unescape_lit(t).to_lowercase())),
        (Val::Id(id), Lit::Str(t)) => {
            let t = unescape_lit(t);
            Some(match SfId::parse(&t) {
                Some(tid) => id.cmp(&tid),
                None => id.as_str().cmp(t.as_str()),
            })
        }
        (Val::Bool(a), Lit::Bool(b)) => Some(a.cmp(b)),
        (Val::Int(a), Lit::Num(b)) => (*a as f64).partial_cmp(b),
        (Val::Num(a), Lit::Num(b)) => a.partial_cmp(b),
        (Val::Dt(a), Lit::Dt(b)) => Some(a.cmp(b)),
        (Val::Dt(a), Lit::Date(d)) => Some(a.cmp(&(i64::from(*d) * DAY_MS))),
        (Val::Date(a), Lit::Date(b)) => Some(a.cmp(b)),
        (Val::Date(a), Lit::Dt(b)) => Some((i64::from(*a) * DAY_MS).cmp(b)),
        _ => None,
    }
}

fn eval_cmp(v: &Val, op: Op, l: &Lit) -> bool {
    if let Lit::Null = l {
        return match op {
            Op::Eq => v.is_null(),
            Op::Ne => !v.is_null(),
            _ => false,
        };
    }
    if v.is_null() {
        return op == Op::Ne;
    }
    if let Lit::Range(s, e) = l {
        let x = match v {
            Val::Dt(ms) => *ms,
            Val::Date(d) => i64::from(*d) * DAY_MS,
            _ => return false,
        };
        return match op {
            Op::Eq => x >= *s && x < *e,
            Op::Ne => !(x >= *s && x < *e),
            Op::Lt => x < *s,
            Op::Le => x < *e,
            Op::Gt => x >= *e,
            Op::Ge => x >= *s,
        };
    }
    let Some(ord) = cmp_val_lit(v, l) else {
        return op == Op::Ne;
    };
    match op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Lt => ord == Ordering::Less,
        Op::Gt => ord == Ordering::Greater,
        Op::Le => ord != Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
    }
}

fn like(text: &[char], pat: &[char]) -> bool {
    // Classic wildcard match with backtracking on '%'.
    let (mut t, mut p) = (0usize, 0usize);
    let (mut star, mut mark) = (None, 0usize);
    while t < text.len() {
        if p < pat.len() && (pat[p] == '_' || unescape_char(pat[p]) == text[t]) && pat[p] != '%' {
            t += 1;
            p += 1;
        } else if p < pat.len() && pat[p] == '%' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while p < pat.len() && pat[p] == '%' {
        p += 1;
    }
    p == pat.len()
}

fn unescape_char(c: char) -> char {
    match c {
        ESC_PCT => '%',
        ESC_UND => '_',
        c => c,
    }
}

fn eval(data: &OrgData, o: Obj, rec: &Record, c: &Cond) -> bool {
    match c {
        Cond::And(v) => v.iter().all(|c| eval(data, o, rec, c)),
        Cond::Or(v) => v.iter().any(|c| eval(data, o, rec, c)),
        Cond::Not(c) => !eval(data, o, rec, c),
        Cond::Cmp(p, op, l) => eval_cmp(&path_val(data, o, rec, p), *op, l),
        Cond::In(p, neg, lits) => {
            let v = path_val(data, o, rec, p);
            let hit = lits.iter().any(|l| eval_cmp(&v, Op::Eq, l));
            hit != *neg
        }
        Cond::Like(p, neg, pat) => {
            let v = path_val(data, o, rec, p);
            let hit = match v.as_text() {
                Some(s) => {
                    let text: Vec<char> = s.to_lowercase().chars().collect();
                    like(&text, pat)
                }
                None => false,
            };
            hit != *neg
        }
    }
}

fn cmp_vals(a: &Val, b: &Val) -> Ordering {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Val::Int(x), Val::Num(y)) => (*x as f64).partial_cmp(y).unwrap_or(Ordering::Equal),
        (Val::Num(x), Val::Int(y)) => x.partial_cmp(&(*y as f64)).unwrap_or(Ordering::Equal),
        (Val::Dt(x), Val::Dt(y)) => x.cmp(y),
        (Val::Date(x), Val::Date(y)) => x.cmp(y),
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        (Val::Id(x), Val::Id(y)) => x.cmp(y),
        _ => a.as_text().cmp(&b.as_text()),
    }
}

/// ORDER BY: the first key that differs decides; nulls go first or last as the item says.
fn cmp_keys(order: &[OrderItem], a: &[Val], b: &[Val]) -> Ordering {
    for ((item, x), y) in order.iter().zip(a).zip(b) {
        let ord = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if item.nulls_last {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, true) => {
                if item.nulls_last {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, false) => {
                let o = cmp_vals(x, y);
                if item.desc { o.reverse() } else { o }
            }
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

/// Indices (into the object's table) of the matching rows, ordered, after OFFSET/LIMIT.
/// `all_rows` includes deleted records (queryAll). `extra` filters further (SOSL).
pub(crate) fn execute(
    data: &OrgData,
    q: &Query,
    all_rows: bool,
    extra: &dyn Fn(&Record) -> bool,
) -> Vec<u32> {
    let table = data.table(q.obj);
    let mut rows: Vec<u32> = table
        .recs
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.purged && (all_rows || r.deleted_at.is_none()))
        .filter(|(_, r)| extra(r))
        .filter(|(_, r)| q.cond.as_ref().is_none_or(|c| eval(data, q.obj, r, c)))
        .map(|(i, _)| i as u32)
        .collect();
    if !q.order.is_empty() {
        // All sort keys in one flat vector (row n's keys at n*k..n*k+k) and a stable sort of
        // positions: no vector per row to allocate, move and free.
        let k = q.order.len();
        let mut keys: Vec<Val> = Vec::with_capacity(rows.len() * k);
        for &i in &rows {
            let r = &table.recs[i as usize];
            keys.extend(
                q.order
                    .iter()
                    .map(|o| path_val(data, q.obj, r, &o.path).into_owned()),
            );
        }
        let mut order: Vec<u32> = (0..rows.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (a as usize * k, b as usize * k);
            cmp_keys(&q.order, &keys[a..a + k], &keys[b..b + k])
        });
        rows = order.into_iter().map(|n| rows[n as usize]).collect();
    }
    let start = q.offset.min(rows.len());
    let mut rows = rows.split_off(start);
    if let Some(l) = q.limit {
        rows.truncate(l);
    }
    rows
}

/// How a row renders: the selected fields in order, each relationship once (at its first
/// field) with its own fields nested. It depends only on the SELECT list and the API version,
/// so it is worked out once per page instead of for every record, with the keys and the
/// `attributes` openings already escaped.
pub(crate) struct Plan {
    root: Level,
    /// Per object (by [`Obj::index`]): `{"attributes":{"type":"T","url":"/services/data/vV/sobjects/T/`,
    /// to be followed by the escaped id and `"}`.
    attrs: Vec<String>,
}

struct Level {
    items: Vec<Item>,
}

enum Item {
    /// `idx` is known up front for fields of the queried object; after a relationship hop the
    /// field is found by name on whatever object the record turns out to be (polymorphic Who).
    Field {
        key: String,
        name: &'static str,
        idx: Option<u16>,
    },
    Rel {
        key: String,
        idx: u16,
        sub: Level,
    },
}

/// `,"name":`
fn key(name: &str) -> String {
    let mut k = String::from(",");
    write_str(name, &mut k);
    k.push(':');
    k
}

impl Plan {
    pub(crate) fn new(paths: &[Path], version: &str) -> Plan {
        let items: Vec<(&[(u16, &'static str)], &Path)> =
            paths.iter().map(|p| (&p.hops[..], p)).collect();
        let mut attrs = vec![String::new(); ALL_OBJS.len()];
        for o in ALL_OBJS {
            let a = &mut attrs[o.index()];
            a.push_str("{\"attributes\":{\"type\":");
            write_str(o.name(), a);
            a.push_str(",\"url\":\"");
            for part in ["/services/data/v", version, "/sobjects/", o.name(), "/"] {
                push_escaped(part, a);
            }
        }
        Plan {
            root: Self::level(&items),
            attrs,
        }
    }

    fn level(items: &[(&[(u16, &'static str)], &Path)]) -> Level {
        let mut out = Vec::new();
        let mut done_rels: Vec<u16> = Vec::new();
        for (hops, p) in items {
            let Some(&(rel_idx, rel_name)) = hops.first() else {
                out.push(Item::Field {
                    key: key(p.field),
                    name: p.field,
                    idx: if p.hops.is_empty() { p.field_idx } else { None },
                });
                continue;
            };
            if done_rels.contains(&rel_idx) {
                continue;
            }
            done_rels.push(rel_idx);
            let sub: Vec<(&[(u16, &'static str)], &Path)> = items
                .iter()
                .filter(|(h, _)| h.first().is_some_and(|h| h.0 == rel_idx))
                .map(|(h, p)| (&h[1..], *p))
                .collect();
            out.push(Item::Rel {
                key: key(rel_name),
                idx: rel_idx,
                sub: Self::level(&sub),
            });
        }
        Level { items: out }
    }
}

/// Render one row with the selected fields (relationship fields nest as objects with attributes).
pub(crate) fn render(data: &OrgData, o: Obj, rec: &Record, plan: &Plan) -> J {
    let mut out = String::new();
    render_into(data, o, rec, plan, &mut out);
    J::Raw(out)
}

/// Writes one row's JSON to `out`, straight from the stored record.
pub(crate) fn render_into(data: &OrgData, o: Obj, rec: &Record, plan: &Plan, out: &mut String) {
    render_level(data, o, rec, &plan.root, &plan.attrs, out);
}

fn render_level(
    data: &OrgData,
    o: Obj,
    rec: &Record,
    level: &Level,
    attrs: &[String],
    out: &mut String,
) {
    out.push_str(&attrs[o.index()]);
    push_escaped(rec.id.as_str(), out);
    out.push_str("\"}");
    for item in &level.items {
        match item {
            Item::Field { key, name, idx } => {
                out.push_str(key);
                match idx.or_else(|| o.field_idx(name)) {
                    Some(i) => data.write_field(o, rec, i, out),
                    None => out.push_str("null"),
                }
            }
            Item::Rel { key, idx, sub } => {
                out.push_str(key);
                let target = match rec.get(*idx) {
                    Val::Id(id) => data.lookup(*id),
                    _ => match data.value(o, rec, *idx) {
                        Val::Id(id) => data.lookup(id),
                        _ => None,
                    },
                };
                match target {
                    Some((o2, r2)) => render_level(data, o2, r2, sub, attrs, out),
                    None => out.push_str("null"),
                }
            }
        }
    }
    out.push('}');
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::ClockMode;

    /// Seeded Japanese records plus records with odd values: strings that need escaping, NaN
    /// and integers, dates outside 0..=9999, partial and empty addresses, references to
    /// deleted and missing records, polymorphic Whos of both types.
    pub(crate) fn odd_org() -> OrgData {
        let mut data = OrgData::new(1);
        data.clock = ClockMode::Frozen(1_700_000_000_000);
        let admin = SfId::make("005", 1, 1);
        crate::seed::seed_japanese(&mut data, admin, 600, 7);
        let idx = |o: Obj, f: &str| o.field_idx(f).unwrap();
        let nasty = [
            "a\"b\\c\nd\re\tf\u{1}\u{1f}\u{7f}",
            "株式会社\u{2028}テスト🙂",
            "",
            "</script>",
        ];
        let add = |data: &mut OrgData, o: Obj, fields: Vec<(u16, Val)>| {
            let id = data.new_id(o);
            data.push_record(
                o,
                Record {
                    id,
                    created: -62_167_219_200_001,
                    modified: 253_402_300_800_000,
                    modstamp: i64::MIN,
                    deleted_at: None,
                    purged: false,
                    fields,
                },
            );
            id
        };
        let acct = add(
            &mut data,
            Obj::Account,
            vec![
                (idx(Obj::Account, "Name"), Val::Str(nasty[0].into())),
                (idx(Obj::Account, "BillingLatitude"), Val::Num(f64::NAN)),
                (idx(Obj::Account, "ShippingCity"), Val::Str(nasty[1].into())),
                (idx(Obj::Account, "OwnerId"), Val::Id(admin)),
            ],
        );
        let gone = add(&mut data, Obj::Account, vec![]);
        let (gone_idx, _) = data.find(Obj::Account, gone).unwrap();
        data.tables[Obj::Account.index()].recs[gone_idx as usize].deleted_at = Some(0);
        let missing = SfId::make("001", 1, 999_999);
        let mut contacts = Vec::new();
        for (n, s) in nasty.iter().enumerate() {
            let account = [acct, gone, missing, admin][n];
            contacts.push(add(
                &mut data,
                Obj::Contact,
                vec![
                    (idx(Obj::Contact, "LastName"), Val::Str((*s).into())),
                    (
                        idx(Obj::Contact, "FirstName"),
                        Val::Str(nasty[3 - n].into()),
                    ),
                    (idx(Obj::Contact, "AccountId"), Val::Id(account)),
                    (idx(Obj::Contact, "MailingLongitude"), Val::Num(-0.5)),
                    (
                        idx(Obj::Contact, "LastActivityDate"),
                        Val::Date([i32::MIN, -719_529, 2_932_897, 0][n]),
                    ),
                    (
                        idx(Obj::Contact, "Description"),
                        Val::Int([i64::MIN, -1, 0, i64::MAX][n]),
                    ),
                ],
            ));
        }
        let lead = add(
            &mut data,
            Obj::Lead,
            vec![
                (idx(Obj::Lead, "LastName"), Val::Str(nasty[1].into())),
                (idx(Obj::Lead, "Company"), Val::Str(nasty[0].into())),
                (idx(Obj::Lead, "Latitude"), Val::Num(1e300)),
                (idx(Obj::Lead, "IsConverted"), Val::Bool(true)),
                (idx(Obj::Lead, "ConvertedContactId"), Val::Id(contacts[0])),
                (idx(Obj::Lead, "ConvertedAccountId"), Val::Id(gone)),
            ],
        );
        for who in [lead, contacts[0], contacts[1], missing] {
            add(
                &mut data,
                Obj::Task,
                vec![
                    (idx(Obj::Task, "WhoId"), Val::Id(who)),
                    (idx(Obj::Task, "WhatId"), Val::Id(acct)),
                    (idx(Obj::Task, "Subject"), Val::Str(nasty[0].into())),
                    (idx(Obj::Task, "Status"), Val::Str("Completed".into())),
                ],
            );
        }
        data
    }

    /// The record renderer as first written (a `J` tree per record, addresses looked up by
    /// formatted name), kept as the reference for the one that writes text directly.
    pub(crate) fn render_reference(
        data: &OrgData,
        o: Obj,
        rec: &Record,
        paths: &[Path],
        version: &str,
    ) -> J {
        let items: Vec<(&[(u16, &'static str)], &Path)> =
            paths.iter().map(|p| (&p.hops[..], p)).collect();
        render_level_reference(data, o, rec, &items, version)
    }

    fn render_level_reference(
        data: &OrgData,
        o: Obj,
        rec: &Record,
        items: &[(&[(u16, &'static str)], &Path)],
        version: &str,
    ) -> J {
        let mut out = J::obj().with("attributes", OrgData::attributes(o, rec.id, version));
        let mut done_rels: Vec<u16> = Vec::new();
        for (hops, p) in items {
            if hops.is_empty() {
                let idx = if p.hops.is_empty() { p.field_idx } else { None }
                    .or_else(|| o.field_idx(p.field));
                let v = match idx {
                    Some(i) => field_j_reference(data, o, rec, i),
                    None => J::Null,
                };
                out.push(p.field, v);
                continue;
            }
            let (rel_idx, rel_name) = hops[0];
            if done_rels.contains(&rel_idx) {
                continue;
            }
            done_rels.push(rel_idx);
            let sub: Vec<(&[(u16, &'static str)], &Path)> = items
                .iter()
                .filter(|(h, _)| !h.is_empty() && h[0].0 == rel_idx)
                .map(|(h, p)| (&h[1..], *p))
                .collect();
            let target = match rec.get(rel_idx) {
                Val::Id(id) => data.lookup(*id),
                _ => match data.value(o, rec, rel_idx) {
                    Val::Id(id) => data.lookup(id),
                    _ => None,
                },
            };
            let v = match target {
                Some((o2, r2)) => render_level_reference(data, o2, r2, &sub, version),
                None => J::Null,
            };
            out.push(rel_name, v);
        }
        out
    }

    fn field_j_reference(data: &OrgData, o: Obj, rec: &Record, idx: u16) -> J {
        let Some(fd) = o.fields().get(idx as usize) else {
            return J::Null;
        };
        if let Kind::Address(p) = fd.kind {
            let part = |n: &str| -> J {
                o.field_idx(&format!("{p}{n}"))
                    .map_or(J::Null, |i| rec.get(i).to_j())
            };
            let comps = [
                ("city", part("City")),
                ("country", part("Country")),
                ("geocodeAccuracy", part("GeocodeAccuracy")),
                ("latitude", part("Latitude")),
                ("longitude", part("Longitude")),
                ("postalCode", part("PostalCode")),
                ("state", part("State")),
                ("street", part("Street")),
            ];
            if comps.iter().all(|(_, v)| *v == J::Null) {
                return J::Null;
            }
            return J::Obj(comps.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        }
        data.value(o, rec, idx).to_j()
    }

    /// The ORDER BY as first written (a key vector per row), the reference for the flat one.
    fn execute_reference(data: &OrgData, q: &Query) -> Vec<u32> {
        let table = data.table(q.obj);
        let rows: Vec<u32> = table
            .recs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_live())
            .filter(|(_, r)| q.cond.as_ref().is_none_or(|c| eval(data, q.obj, r, c)))
            .map(|(i, _)| i as u32)
            .collect();
        let mut keyed: Vec<(Vec<Val>, u32)> = rows
            .iter()
            .map(|&i| {
                let r = &table.recs[i as usize];
                let key = q.order.iter().map(|o| path_val(data, q.obj, r, &o.path));
                (key.map(Cow::into_owned).collect(), i)
            })
            .collect();
        keyed.sort_by(|(a, _), (b, _)| {
            for (k, item) in q.order.iter().enumerate() {
                let (x, y) = (&a[k], &b[k]);
                let ord = match (x.is_null(), y.is_null()) {
                    (true, true) => Ordering::Equal,
                    (true, false) if item.nulls_last => Ordering::Greater,
                    (true, false) => Ordering::Less,
                    (false, true) if item.nulls_last => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) if item.desc => cmp_vals(x, y).reverse(),
                    (false, false) => cmp_vals(x, y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            Ordering::Equal
        });
        let rows: Vec<u32> = keyed.into_iter().map(|(_, i)| i).collect();
        let rows = &rows[q.offset.min(rows.len())..];
        rows[..q.limit.unwrap_or(usize::MAX).min(rows.len())].to_vec()
    }

    #[test]
    fn order_by_sorts_as_before() {
        let data = odd_org();
        for soql in [
            "SELECT Id FROM Lead ORDER BY SystemModstamp, Id",
            "SELECT Id FROM Lead WHERE Phone != null ORDER BY Company DESC, LastName NULLS LAST",
            "SELECT Id FROM Contact ORDER BY Account.Name NULLS LAST, FirstName DESC NULLS FIRST",
            "SELECT Id FROM Contact ORDER BY MailingCity, LastActivityDate DESC, CreatedDate",
            "SELECT Id FROM Task ORDER BY Who.Name, Status LIMIT 50 OFFSET 3",
            "SELECT Id FROM Account ORDER BY Name DESC OFFSET 2000",
            "SELECT Id FROM User ORDER BY IsActive, Email LIMIT 5",
            "SELECT Id FROM Lead ORDER BY IsConverted DESC, Latitude, Name",
        ] {
            let q = parse(soql, &data).unwrap();
            let got = execute(&data, &q, false, &|_| true);
            assert_eq!(got, execute_reference(&data, &q), "{soql}");
        }
    }

    /// Every field of `o`, then relationship paths (nested, repeated, polymorphic, interleaved).
    pub(crate) fn wide_select(o: Obj) -> String {
        let mut fields: Vec<&str> = o.fields().iter().map(|f| f.name).collect();
        let rels: &[&str] = match o {
            Obj::Lead => &[
                "Owner.Name",
                "ConvertedContact.Account.Name",
                "ConvertedAccount.Name",
                "Owner.Email",
                "ConvertedContact.MailingAddress",
                "ConvertedContact.Account.BillingAddress",
            ],
            Obj::Contact => &[
                "Account.Name",
                "Account.Owner.Name",
                "Account.ShippingAddress",
            ],
            Obj::Task => &[
                "Who.Name",
                "What.Name",
                "Who.Phone",
                "Account.Name",
                "Owner.Alias",
            ],
            Obj::Account => &["Owner.Name", "Parent.Name"],
            Obj::User => &[],
        };
        fields.splice(2..2, rels.iter().copied());
        format!("SELECT {} FROM {}", fields.join(", "), o.name())
    }

    #[test]
    fn records_render_exactly_as_the_json_tree_did() {
        let data = odd_org();
        let mut rendered = 0;
        for o in ALL_OBJS {
            let q = parse(&wide_select(o), &data).unwrap();
            let paths = q.select.clone().unwrap();
            let plan = Plan::new(&paths, "62.0");
            for i in execute(&data, &q, true, &|_| true) {
                let rec = &data.table(o).recs[i as usize];
                let want = render_reference(&data, o, rec, &paths, "62.0").to_json_string();
                let mut got = String::from("[");
                render_into(&data, o, rec, &plan, &mut got);
                assert_eq!(got[1..], want, "{} {}", o.name(), rec.id);
                assert_eq!(
                    render(&data, o, rec, &Plan::new(&paths, "62.0")).to_json_string(),
                    want
                );
                for (f, _) in o.fields().iter().enumerate() {
                    let mut one = String::new();
                    data.write_field(o, rec, f as u16, &mut one);
                    let want = field_j_reference(&data, o, rec, f as u16).to_json_string();
                    assert_eq!(one, want);
                    assert_eq!(data.field_j(o, rec, f as u16).to_json_string(), want);
                }
                rendered += 1;
            }
        }
        assert!(rendered > 600);
    }

    #[test]
    fn like_matching() {
        let t: Vec<char> = "株式会社テスト".chars().collect();
        assert!(like(&t, &"株式会社%".chars().collect::<Vec<_>>()));
        assert!(like(&t, &"%テスト".chars().collect::<Vec<_>>()));
        assert!(like(&t, &"株_会社%".chars().collect::<Vec<_>>()));
        assert!(!like(&t, &"%x%".chars().collect::<Vec<_>>()));
        let pct: Vec<char> = "50%".chars().collect();
        assert!(like(&pct, &['5', '0', ESC_PCT]));
        assert!(!like(
            &"500".chars().collect::<Vec<_>>(),
            &['5', '0', ESC_PCT]
        ));
    }

    #[test]
    fn lexes_escapes_and_dates() {
        let l = lex(r"SELECT Id FROM Account WHERE Name = 'O\'Brien' AND CreatedDate > 2024-01-01T00:00:00Z").unwrap();
        assert!(l.toks.iter().any(|(t, _)| *t == Tok::Str("O'Brien".into())));
        assert!(
            l.toks
                .iter()
                .any(|(t, _)| *t == Tok::Date("2024-01-01T00:00:00Z".into()))
        );
        assert!(lex(r"SELECT Id FROM Account WHERE Name = 'a\qb'").is_err());
    }
}
