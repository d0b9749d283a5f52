//! MANSCDP, the XML bodies of GB/T 28181 MESSAGEs: read with the bounded reader of [`crate::xml`], and
//! the writer of the queries and answers Vigil sends (GB2312-declared and GB18030-encoded, as devices in
//! the field expect).

pub use crate::xml::{parse, Element, XmlError, MAX_BODY, MAX_DEPTH, MAX_ELEMENTS};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

/// Writes MANSCDP bodies: `root` with text children, nested lists, encoded as GB18030.
pub struct Body {
    w: Writer<Vec<u8>>,
}

impl Body {
    pub fn new(root: &str) -> Body {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        // Writing into a Vec cannot fail.
        let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("GB2312"), None)));
        let _ = w.write_event(Event::Start(BytesStart::new(root)));
        Body { w }
    }

    /// `<name>value</name>`, the value escaped.
    pub fn field(&mut self, name: &str, value: &str) -> &mut Body {
        let _ = self.w.write_event(Event::Start(BytesStart::new(name)));
        let _ = self.w.write_event(Event::Text(BytesText::new(value)));
        let _ = self.w.write_event(Event::End(BytesEnd::new(name)));
        self
    }

    /// Opens `<name attr="value"...>`; close it with [`Body::close`].
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Body {
        let mut s = BytesStart::new(name);
        for (k, v) in attrs {
            s.push_attribute((*k, *v));
        }
        let _ = self.w.write_event(Event::Start(s));
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Body {
        let _ = self.w.write_event(Event::End(BytesEnd::new(name)));
        self
    }

    /// Closes the root and encodes the document.
    pub fn finish(mut self, root: &str) -> Vec<u8> {
        let _ = self.w.write_event(Event::End(BytesEnd::new(root)));
        let mut bytes = self.w.into_inner();
        bytes.push(b'\n');
        let text = String::from_utf8_lossy(&bytes);
        encoding_rs::GB18030.encode(&text).0.into_owned()
    }
}

/// A query (`<Query><CmdType>..</CmdType><SN>..</SN><DeviceID>..</DeviceID></Query>`).
pub fn query(cmd: &str, sn: u32, device_id: &str) -> Vec<u8> {
    let mut b = Body::new("Query");
    b.field("CmdType", cmd)
        .field("SN", &sn.to_string())
        .field("DeviceID", device_id);
    b.finish("Query")
}

/// A RecordInfo query for one channel and a range (GB/T 28181 local times, see `time::ms_to_gb`).
pub fn record_info_query(sn: u32, channel: &str, start: &str, end: &str) -> Vec<u8> {
    let mut b = Body::new("Query");
    b.field("CmdType", "RecordInfo")
        .field("SN", &sn.to_string())
        .field("DeviceID", channel)
        .field("StartTime", start)
        .field("EndTime", end)
        .field("Secrecy", "0")
        .field("Type", "all");
    b.finish("Query")
}

/// The RecordInfo answer of a channel (Vigil's, and its simulated device's): `spans` (Unix ms) as
/// records named `name`, in pages of `page` items (one empty page when there are none).
pub fn record_info_pages(
    sn: &str,
    channel: &str,
    name: &str,
    spans: &[(i64, i64)],
    page: usize,
    offset_minutes: i32,
) -> Vec<Vec<u8>> {
    let gb = |ms: i64| crate::time::ms_to_gb(ms, offset_minutes);
    let write = |items: &[(i64, i64)]| {
        let mut b = Body::new("Response");
        b.field("CmdType", "RecordInfo")
            .field("SN", sn)
            .field("DeviceID", channel)
            .field("Name", name)
            .field("SumNum", &spans.len().to_string())
            .open("RecordList", &[("Num", &items.len().to_string())]);
        for (a, z) in items {
            b.open("Item", &[])
                .field("DeviceID", channel)
                .field("Name", name)
                .field("StartTime", &gb(*a))
                .field("EndTime", &gb(*z))
                .field("Secrecy", "0")
                .field("Type", "time")
                .close("Item");
        }
        b.close("RecordList");
        b.finish("Response")
    };
    if spans.is_empty() {
        return vec![write(&[])];
    }
    spans.chunks(page.max(1)).map(write).collect()
}

/// The MediaStatus notification that a playback reached its end (NotifyType 121).
pub fn end_of_file(sn: u32, channel: &str) -> Vec<u8> {
    let mut b = Body::new("Notify");
    b.field("CmdType", "MediaStatus")
        .field("SN", &sn.to_string())
        .field("DeviceID", channel)
        .field("NotifyType", "121");
    b.finish("Notify")
}

/// The answer to a DeviceInfo query (Vigil's, and its simulated device's).
pub fn device_info(sn: &str, id: &str, name: &str, model: &str, channels: Option<u32>) -> Vec<u8> {
    let mut b = Body::new("Response");
    b.field("CmdType", "DeviceInfo")
        .field("SN", sn)
        .field("DeviceID", id)
        .field("Result", "OK")
        .field("DeviceName", name)
        .field("Manufacturer", "Vigil")
        .field("Model", model)
        .field("Firmware", env!("CARGO_PKG_VERSION"));
    if let Some(n) = channels {
        b.field("Channel", &n.to_string());
    }
    b.finish("Response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_gb2312_catalog_page() {
        let text = "<?xml version=\"1.0\" encoding=\"GB2312\"?>\n<Response><CmdType>Catalog</CmdType><SN>7</SN>\
            <DeviceID>34020000001320000001</DeviceID><SumNum>2</SumNum><DeviceList Num=\"1\"><Item>\
            <DeviceID>34020000001310000001</DeviceID><Name>办事大厅 1</Name><CivilCode>340200</CivilCode>\
            <Status>ON</Status></Item></DeviceList></Response>";
        let body = encoding_rs::GB18030.encode(text).0.into_owned();
        let root = parse(&body).unwrap();
        assert_eq!(root.name, "Response");
        assert_eq!(root.text_of("SumNum"), Some("2"));
        let list = root.child("DeviceList").unwrap();
        assert_eq!(list.attrs, vec![("Num".to_owned(), "1".to_owned())]);
        let item = list.children_named("Item").next().unwrap();
        assert_eq!(item.text_of("Name"), Some("办事大厅 1"));
    }

    #[test]
    fn writes_what_it_reads() {
        let mut b = Body::new("Response");
        b.field("CmdType", "Catalog")
            .open("DeviceList", &[("Num", "1")]);
        b.open("Item", &[])
            .field("Name", "评标室 <A>")
            .close("Item");
        b.close("DeviceList");
        let root = parse(&b.finish("Response")).unwrap();
        let item = root.child("DeviceList").unwrap().child("Item").unwrap();
        assert_eq!(item.text_of("Name"), Some("评标室 <A>"));
    }

    #[test]
    fn refuses_garbage_and_bombs() {
        assert!(parse(b"").is_err());
        assert!(parse(b"<a><b></a>").is_err());
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(matches!(parse(deep.as_bytes()), Err(XmlError::TooComplex)));
        assert!(matches!(
            parse(&vec![b' '; MAX_BODY + 1]),
            Err(XmlError::TooLarge(_))
        ));
    }
}
