//! The sliver of EDN that porcupine's kv logs use: one flat map per line whose keys are keywords
//! and whose values are nil, integers, keywords or strings.

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Nil,
    Int(i64),
    Keyword(String),
    Str(String),
}

impl Value {
    pub(crate) fn describe(&self) -> String {
        match self {
            Value::Nil => "nil".to_string(),
            Value::Int(value) => value.to_string(),
            Value::Keyword(name) => format!(":{name}"),
            Value::Str(text) => super::quote(text),
        }
    }
}

/// A parse failure: what was expected and what was found (the caller adds file and line).
pub(crate) type Error = (String, String);

/// Parses `{:k v, :k v ...}` into (keyword name, value) pairs in order.
pub(crate) fn parse_map(line: &str) -> Result<Vec<(String, Value)>, Error> {
    let mut parser = Parser { rest: line };
    parser.skip_blank();
    parser.expect('{')?;
    let mut pairs = Vec::new();
    loop {
        parser.skip_blank();
        if parser.rest.starts_with('}') {
            parser.rest = &parser.rest[1..];
            break;
        }
        if parser.rest.is_empty() {
            return Err(("a keyword or '}'".into(), parser.found()));
        }
        let key = match parser.value()? {
            Value::Keyword(name) => name,
            other => return Err(("a keyword key".into(), other.describe())),
        };
        parser.skip_blank();
        let value = parser.value()?;
        pairs.push((key, value));
    }
    parser.skip_blank();
    if !parser.rest.is_empty() {
        return Err((
            "the end of the line after '}'".into(),
            super::quote(parser.rest),
        ));
    }
    Ok(pairs)
}

struct Parser<'a> {
    rest: &'a str,
}

impl Parser<'_> {
    /// Whitespace and commas (commas are whitespace in EDN).
    fn skip_blank(&mut self) {
        self.rest = self
            .rest
            .trim_start_matches(|c: char| c.is_whitespace() || c == ',');
    }

    fn expect(&mut self, wanted: char) -> Result<(), Error> {
        match self.rest.strip_prefix(wanted) {
            Some(rest) => {
                self.rest = rest;
                Ok(())
            }
            None => Err((format!("'{wanted}'"), self.found())),
        }
    }

    fn found(&self) -> String {
        if self.rest.is_empty() {
            "the end of the line".to_string()
        } else {
            super::quote(self.rest)
        }
    }

    fn token(&mut self) -> &str {
        let end = self
            .rest
            .find(|c: char| c.is_whitespace() || c == ',' || c == '}' || c == '{' || c == '"')
            .unwrap_or(self.rest.len());
        let (token, rest) = self.rest.split_at(end);
        self.rest = rest;
        token
    }

    fn value(&mut self) -> Result<Value, Error> {
        if self.rest.starts_with('"') {
            return self.string();
        }
        if let Some(rest) = self.rest.strip_prefix(':') {
            self.rest = rest;
            let name = self.token();
            if name.is_empty() {
                return Err(("a keyword name after ':'".into(), self.found()));
            }
            return Ok(Value::Keyword(name.to_string()));
        }
        let before = self.found();
        let token = self.token();
        if token == "nil" {
            return Ok(Value::Nil);
        }
        match token.parse::<i64>() {
            Ok(value) => Ok(Value::Int(value)),
            Err(_) => Err(("nil, an integer, a keyword or a string".into(), before)),
        }
    }

    fn string(&mut self) -> Result<Value, Error> {
        let mut out = String::new();
        let mut chars = self.rest.char_indices().skip(1);
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[at + 1..];
                    return Ok(Value::Str(out));
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, escaped @ ('"' | '\\'))) => out.push(escaped),
                    Some((_, other)) => {
                        return Err((
                            "a string escape (\\\" \\\\ \\n \\t \\r)".into(),
                            format!("'\\{other}'"),
                        ))
                    }
                    None => break,
                },
                other => out.push(other),
            }
        }
        Err(("a closing '\"'".into(), "the end of the line".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_porcupine_lines() {
        let pairs = parse_map(r#"{:process 12, :type :ok, :f :get, :key "7", :value "x \"q\" y"}"#)
            .unwrap();
        assert_eq!(pairs[0], ("process".into(), Value::Int(12)));
        assert_eq!(pairs[1], ("type".into(), Value::Keyword("ok".into())));
        assert_eq!(pairs[4], ("value".into(), Value::Str("x \"q\" y".into())));
        assert_eq!(
            parse_map("{:value nil}").unwrap(),
            vec![("value".into(), Value::Nil)]
        );
        assert_eq!(parse_map(" {} ").unwrap(), vec![]);
    }

    #[test]
    fn rejects_broken_lines() {
        assert_eq!(parse_map("{:a 1").unwrap_err().0, "a keyword or '}'");
        assert_eq!(parse_map("{:a 1 2 3}").unwrap_err().0, "a keyword key");
        assert!(parse_map("[:a 1]").is_err());
        assert!(parse_map(r#"{:a "open}"#).is_err());
        assert!(parse_map("{1 2}").is_err());
        assert!(parse_map("{:a 1} x").is_err());
        assert!(parse_map("{: 1}").is_err());
        assert!(parse_map("{:a x}").is_err());
        assert!(parse_map(r#"{:a "\q"}"#).is_err());
    }
}
