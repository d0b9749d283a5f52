//! XML from outside (GB/T 28181 MANSCDP bodies, ONVIF SOAP answers): a bounded reader into a small
//! element tree (quick-xml). Names are local names (namespace prefixes dropped), compared without case.
//!
//! Invariants: documents come from devices, so reading is bounded ([`MAX_BODY`] bytes, [`MAX_ELEMENTS`]
//! elements, [`MAX_DEPTH`] levels) and never panics; GB2312/GBK/GB18030 documents (the declaration says
//! which; most GB/T 28181 devices send GB2312) are decoded to UTF-8.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

pub const MAX_BODY: usize = 256 << 10;
pub const MAX_ELEMENTS: usize = 20_000;
pub const MAX_DEPTH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("body of {0} bytes is larger than {MAX_BODY}")]
    TooLarge(usize),
    #[error("more than {MAX_ELEMENTS} elements or {MAX_DEPTH} levels")]
    TooComplex,
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("no root element")]
    Empty,
}

/// One element: its name, its own text (trimmed) and its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The text of a direct child (empty children count as absent).
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .map(|c| c.text.as_str())
            .filter(|t| !t.is_empty())
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.name.eq_ignore_ascii_case(name))
    }
}

/// Decodes a body to UTF-8 following its XML declaration (GB2312 and kin through GB18030).
fn decode(body: &[u8]) -> String {
    let head = &body[..body.len().min(100)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let gb = ["gb2312", "gbk", "gb18030"]
        .iter()
        .any(|e| head.contains(e));
    if gb {
        encoding_rs::GB18030.decode(body).0.into_owned()
    } else {
        String::from_utf8_lossy(body).into_owned()
    }
}

/// Reads a document into its root element.
pub fn parse(body: &[u8]) -> Result<Element, XmlError> {
    if body.len() > MAX_BODY {
        return Err(XmlError::TooLarge(body.len()));
    }
    let text = decode(body);
    let mut reader = Reader::from_str(&text);
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    let malformed = |e: &dyn std::fmt::Display| XmlError::Malformed(e.to_string());
    loop {
        match reader.read_event().map_err(|e| malformed(&e))? {
            Event::Start(s) => {
                count += 1;
                if count > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooComplex);
                }
                stack.push(element(&s)?);
            }
            Event::Empty(s) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmlError::TooComplex);
                }
                let e = element(&s)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(e),
                    None => return Ok(e),
                }
            }
            Event::Text(t) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&t.decode().map_err(|e| malformed(&e))?);
                }
            }
            // Entities come apart from the text around them (quick-xml 0.38).
            Event::GeneralRef(r) => {
                if let Some(cur) = stack.last_mut() {
                    let c = match r.resolve_char_ref().map_err(|e| malformed(&e))? {
                        Some(c) => c,
                        None => {
                            let name = r.decode().map_err(|e| malformed(&e))?;
                            quick_xml::escape::resolve_predefined_entity(&name)
                                .and_then(|s| s.chars().next())
                                .ok_or_else(|| {
                                    XmlError::Malformed(format!("unknown entity &{name};"))
                                })?
                        }
                    };
                    cur.text.push(c);
                }
            }
            Event::CData(t) => {
                if let Some(cur) = stack.last_mut() {
                    cur.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(_) => {
                let mut done = stack.pop().ok_or(XmlError::Empty)?;
                done.text = done.text.trim().to_owned();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Ok(done),
                }
            }
            Event::Eof => return Err(XmlError::Empty),
            _ => {}
        }
    }
}

fn element(s: &BytesStart<'_>) -> Result<Element, XmlError> {
    let name = String::from_utf8_lossy(s.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in s.attributes().flatten() {
        let key = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map(|v| v.into_owned())
            .unwrap_or_default();
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        ..Element::default()
    })
}
